"""The wire format shared by the client and the embedded backend: pure codecs, no I/O.

This is the one module of ``backend_client`` that ``backend`` may import (see docs/DECISIONS.md).
"""

from collab.backend_client.wire.values import (
    Int64,
    ValueError_,
    convex_to_json,
    decode_ts,
    dumps,
    encode_ts,
    json_to_convex,
    loads,
)

__all__ = [
    "Int64",
    "ValueError_",
    "convex_to_json",
    "decode_ts",
    "dumps",
    "encode_ts",
    "json_to_convex",
    "loads",
]
