from tests.backend.strict import audit_server_output  # noqa: F401 - autouse: every frame parsed strictly
