"""Precedence (defaults < presets < file < env < overrides) and how layers merge."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from collab.config import ConfigError, load_config, load_config_text

FILE = """
[backend]
url = "https://from-file.convex.cloud"
space = "file-space"

[theme]
name = "light"
"""


def test_file_overrides_defaults(env: dict[str, str], write_cfg: Callable[[str], Path]) -> None:
    path = write_cfg(FILE)
    cfg = load_config(path, env=env)
    assert cfg.backend.url == "https://from-file.convex.cloud"
    assert cfg.backend.space == "file-space"
    assert cfg.theme.resolved == "textual-light"
    assert cfg.source_path == path
    assert cfg.locks.lease_ttl_s == 30  # untouched sections keep their defaults


def test_default_location_is_read(env: dict[str, str]) -> None:
    path = Path(env["XDG_CONFIG_HOME"]) / "collab" / "config.toml"
    path.parent.mkdir(parents=True)
    path.write_text(FILE)
    assert load_config(env=env).backend.space == "file-space"


def test_env_overrides_file(env: dict[str, str], write_cfg: Callable[[str], Path]) -> None:
    env = env | {
        "COLLAB_URL": "https://from-env.convex.cloud",
        "COLLAB_SPACE": "env-space",
        "COLLAB_THEME": "nord",
        "COLLAB_HANDLE": "bob",
        "COLLAB_NAME": "Bob B.",
        "COLLAB_MODEL": "fast",
        "COLLAB_EDITOR": "$EDITOR",
    }
    cfg = load_config(write_cfg(FILE), env=env)
    assert cfg.backend.url == "https://from-env.convex.cloud"
    assert cfg.backend.space == "env-space"
    assert cfg.theme.resolved == "nord"
    assert cfg.identity.handle == "bob" and cfg.identity.name == "Bob B."
    assert cfg.models.default == "fast"
    assert cfg.ui.editor_command({"EDITOR": "vim -n"}) == ["vim", "-n"]


def test_overrides_win_over_env(env: dict[str, str], write_cfg: Callable[[str], Path]) -> None:
    env = env | {"COLLAB_URL": "https://from-env.convex.cloud", "COLLAB_SPACE": "env-space"}
    cfg = load_config(
        write_cfg(FILE),
        env=env,
        overrides={"backend.url": "embedded", "backend.space": None, "theme": {"name": "dark"}},
    )
    assert cfg.backend.url is None  # "embedded" forces the embedded backend
    assert cfg.backend.space == "env-space"  # None = flag not given
    assert cfg.theme.name == "dark"


def test_generic_nested_env_vars(env: dict[str, str]) -> None:
    env = env | {
        "COLLAB_LOCKS__LEASE_TTL_S": "60",
        "COLLAB_STREAMING__PERSIST_INTERVAL_MS": "400",
        "COLLAB_UI__MOUSE": "false",
        "COLLAB_THEME__NAME": "gruvbox",
        "COLLAB_THEME": "nord",  # the named variable wins over the generic spelling
    }
    cfg = load_config(env=env)
    assert cfg.locks.lease_ttl_s == 60
    assert cfg.streaming.persist_interval_ms == 400
    assert cfg.ui.mouse is False
    assert cfg.theme.name == "nord"


def test_empty_env_vars_and_unrelated_ones_are_ignored(env: dict[str, str]) -> None:
    cfg = load_config(env=env | {"COLLAB_URL": "", "COLLAB_TOKEN": "secret", "COLLABX": "1"})
    assert cfg.backend.url is None


def test_use_env_false(env: dict[str, str]) -> None:
    cfg = load_config(env=env | {"COLLAB_SPACE": "x"}, use_env=False)
    assert cfg.backend.space == "main"


def test_collab_config_env_var_selects_the_file(
    env: dict[str, str], write_cfg: Callable[[str], Path]
) -> None:
    path = write_cfg(FILE, "elsewhere.toml")
    assert load_config(env=env | {"COLLAB_CONFIG": str(path)}).backend.space == "file-space"


def test_explicit_missing_file_is_an_error(env: dict[str, str], tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "nope.toml", env=env)
    assert info.value.path == tmp_path / "nope.toml"
    assert "not found" in str(info.value)


def test_data_dir_sources(
    env: dict[str, str], write_cfg: Callable[[str], Path], tmp_path: Path
) -> None:
    path = write_cfg('[backend]\ndata_dir = "spaces"\n')
    assert load_config(path, env=env).data_dir == tmp_path / "spaces"  # relative to the file
    path = write_cfg('[backend]\ndata_dir = "~/d"\n')
    assert load_config(path, env=env).data_dir == Path(env["HOME"]) / "d"
    cfg = load_config(path, env=env | {"COLLAB_DATA_DIR": "/env-data"})
    assert cfg.data_dir == Path("/env-data")
    cfg = load_config(path, env=env, overrides={"backend.data_dir": "/flag-data"})
    assert cfg.data_dir == Path("/flag-data")


def test_agents_merge_by_handle(env: dict[str, str]) -> None:
    cfg = load_config_text(
        """
[[agents]]
handle = "edwin"
model = "fast"
temperature = 0.2

[[agents]]
handle = "polly"
enabled = false

[[agents]]
handle = "zoe"
name = "Zoe"
role = "critic"
persona = "You are Zoe."
""",
        env=env,
    )
    edwin = cfg.agent("edwin")
    assert edwin.model == "fast" and edwin.temperature == 0.2
    assert edwin.persona.startswith("You are Edwin")  # unchanged keys are kept
    assert cfg.model_for("edwin").model == "openai/gpt-4o-mini"
    assert [a.handle for a in cfg.enabled_agents()] == ["rhea", "dara", "edwin", "quinn", "zoe"]
    # A disabled agent named by a preset is left out of that flow, not an error.
    assert [a.handle for a in cfg.flow_agents("writing")] == ["dara", "edwin"]


def test_user_flows_add_to_and_change_presets(env: dict[str, str]) -> None:
    cfg = load_config_text(
        """
[flows.brainstorm]
title = "Brainstorm"
view = "discussion"
agents = ["dara", "quinn"]

[flows.writing]
instructions = "Write for children."

[flows.coding]
hidden = true
""",
        env=env,
    )
    assert cfg.flow("brainstorm").agents == ["dara", "quinn"]
    writing = cfg.flow("writing")
    assert writing.instructions == "Write for children."
    assert len(writing.stages) == 3  # the rest of the preset is kept
    assert "coding" in cfg.flows and "coding" not in cfg.visible_flows()


def test_model_alias_replaces_builtin_whole(env: dict[str, str]) -> None:
    cfg = load_config_text(
        """
[models]
default = "fast"

[models.aliases]
fast = "groq/llama-3.1-8b-instant"
mine = { model = "openai/my-model", api_base = "http://127.0.0.1:8000/v1", api_key_env = "MY_KEY" }
""",
        env=env,
    )
    fast = cfg.models.resolve()
    assert fast.model == "groq/llama-3.1-8b-instant"
    assert fast.api_key_env is None  # not inherited from the built-in "fast"
    mine = cfg.models.resolve("mine")
    assert mine.missing_key({}) is not None and "MY_KEY" in mine.missing_key({})
    kw = mine.litellm_kwargs({"MY_KEY": "k"})
    assert kw["api_key"] == "k" and kw["api_base"] == "http://127.0.0.1:8000/v1"
    assert cfg.models.resolve("anthropic/claude-x").model == "anthropic/claude-x"


def test_keymap_spellings(env: dict[str, str]) -> None:
    cfg = load_config_text(
        """
[keymap]
"artifact.edit" = "E"
app.help = ["f1", "?"]

[keymap.editor]
save = "ctrl+S"
""",
        env=env,
    )
    assert cfg.keymap["artifact.edit"] == "E"
    assert cfg.keymap["app.help"] == "f1,question_mark"
    assert cfg.keymap["editor.save"] == "ctrl+s"
    assert cfg.keymap["app.quit"] == "ctrl+q"  # the rest keeps its defaults


def test_multiplexer_keys_with_opt_in(env: dict[str, str]) -> None:
    text = '[ui]\nallow_multiplexer_keys = true\n[keymap]\n"app.help" = "ctrl+b"\n'
    assert load_config_text(text, env=env).keymap["app.help"] == "ctrl+b"


def test_handle_never_collides_with_an_agent(env: dict[str, str]) -> None:
    assert load_config(env=env | {"USER": "quinn"}).identity.handle == "quinn2"
    assert load_config(env=env | {"USER": "Jane.Doe"}).identity.handle == "jane-doe"


def test_empty_file_and_bom(env: dict[str, str], write_cfg: Callable[[str], Path]) -> None:
    assert load_config(write_cfg(""), env=env).backend.space == "main"
    path = write_cfg("")
    path.write_bytes(b'\xef\xbb\xbf[backend]\nspace = "bom"\n')
    assert load_config(path, env=env).backend.space == "bom"
