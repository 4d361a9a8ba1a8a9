"""The commented first-run config: loads back to the defaults, never overwrites."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from collab.config import (
    DEFAULT_KEYMAP,
    default_config,
    default_config_text,
    load_config,
    write_default_config,
)
from collab.config.models import Config


def test_written_config_loads_back_to_the_defaults(env: dict[str, str]) -> None:
    path = write_default_config(env=env)
    assert path is not None and path == Path(env["XDG_CONFIG_HOME"]) / "collab" / "config.toml"
    loaded = load_config(env=env)
    assert loaded.source_path == path
    assert loaded.model_dump() == default_config(env).model_dump()


def test_written_data_matches_the_models(env: dict[str, str]) -> None:
    data = tomllib.loads(default_config_text(env))
    # Every section is present (keymap and identity as commented examples only).
    assert set(data) == set(Config.model_fields) - {"flows"}
    assert data["keymap"] == {} and data["identity"] == {}
    assert [a["handle"] for a in data["agents"]] == [a.handle for a in Config().agents]
    assert data["agents"][0]["persona"] == Config().agents[0].persona  # wrapped, same text


def test_commented_examples_are_valid(env: dict[str, str]) -> None:
    """Uncommenting an example gives valid config (the examples teach the right syntax)."""
    text = default_config_text(env)
    lines = text.splitlines()
    # Flow examples: each block from "# [flows.x]" to the next line that is not code.
    flows: list[str] = []
    taking = False
    for line in lines:
        if line.startswith("# [flows."):
            taking = True
        elif not line.startswith("# ") or line.startswith("# A ") or line.startswith("# Hide"):
            taking = False
        if taking:
            flows.append(line[2:])
    data = tomllib.loads("\n".join(flows))
    assert {"brainstorm", "spec_review", "coding"} == set(data["flows"])
    cfg = load_config_text_with(env, "\n".join(flows))
    assert cfg.flow("spec_review").stages[0].actor == "human"
    # Keymap lines: '# "id" = "keys"   # description'
    keymap = [ln[2:].split("  #")[0] for ln in lines if re.match(r'# "[a-z_]+\.[a-z_]+" = ', ln)]
    assert set(tomllib.loads("\n".join(keymap))) == set(DEFAULT_KEYMAP)
    # Single-key examples of unset values.
    for key in ("url", "data_dir", "handle", "display_name", "model", "ui_max_chars"):
        example = next(ln[2:] for ln in lines if ln.startswith(f"# {key} = "))
        tomllib.loads(example)


def load_config_text_with(env: dict[str, str], text: str) -> Config:
    from collab.config import load_config_text

    return load_config_text(text, env=env)


def test_every_section_is_explained(env: dict[str, str]) -> None:
    text = default_config_text(env)
    for section in ("[backend]", "[identity]", "[models]", "[[agents]]", "[streaming]", "[locks]",
                    "[keymap]", "[theme]", "[ui]"):
        at = text.index(section)
        assert text[:at].rstrip("\n").splitlines()[-1].startswith("#"), section
    assert "# [flows.brainstorm]" in text
    for binding in DEFAULT_KEYMAP:
        assert f'"{binding}"' in text


def test_lines_fit_a_narrow_editor(env: dict[str, str]) -> None:
    assert max(len(line) for line in default_config_text(env).splitlines()) <= 99


def test_never_overwrites(env: dict[str, str], tmp_path: Path) -> None:
    target = tmp_path / "deep" / "dir" / "config.toml"
    assert write_default_config(target, env=env) == target
    target.write_text("# mine\n")
    assert write_default_config(target, env=env) is None
    assert target.read_text() == "# mine\n"
    assert [p.name for p in target.parent.iterdir()] == ["config.toml"]  # no temp file left
