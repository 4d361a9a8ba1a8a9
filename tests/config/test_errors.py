"""Every config error names the source file, the line and the field."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from collab.config import Config, ConfigError, load_config, load_config_text

Load = Callable[[str], ConfigError]


@pytest.fixture
def fails(env: dict[str, str], write_cfg: Callable[[str], Path]) -> Load:
    """Load TOML text from a file; return the ConfigError it must raise."""

    def run(text: str) -> ConfigError:
        path = write_cfg(text.lstrip("\n"))
        with pytest.raises(ConfigError) as info:
            load_config(path, env=env)
        err = info.value
        assert err.path == path
        assert str(err).startswith(str(path) + ":") or str(err).startswith("~/")
        return err

    return run


AGENTS = """
[identity]
handle = "alice"

[[agents]]
handle = "zoe"
name = "Zoe"

[[agents]]
handle = "yan"
name = "Yan"

[[agents]]
handle = "edwin"
temperature = 3.5
"""


def test_the_example_of_the_brief(fails: Load) -> None:
    err = fails(AGENTS)
    assert (err.line, err.field) == (14, "agents[2].temperature")
    assert err.message == "must be <= 2 (got 3.5)"
    assert str(err).endswith("config.toml:14: agents[2].temperature: must be <= 2 (got 3.5)")


def test_syntax_error_names_line_column_and_key(fails: Load) -> None:
    err = fails('[backend]\nspace = "main"\nurl = "https://x\n')
    assert (err.line, err.column, err.field) == (3, 17, "backend.url")  # where the string is cut off
    assert "invalid TOML" in err.message


def test_syntax_error_inside_array_of_tables(fails: Load) -> None:
    err = fails('[[agents]]\nhandle = "a"\n\n[[agents]]\nhandle = "b"\ntemperature = \n')
    assert (err.line, err.field) == (6, "agents[1].temperature")


def test_syntax_error_on_a_header(fails: Load) -> None:
    err = fails("[backend]\nspace = 'a'\n[theme\nname = 'x'\n")
    assert err.line == 3 and "invalid TOML" in err.message


def test_wrong_type(fails: Load) -> None:
    err = fails('[locks]\nlease_ttl_s = "long"\n')
    assert (err.line, err.field) == (2, "locks.lease_ttl_s")
    assert err.message == 'must be a number (got "long")'


def test_wrong_type_for_a_section(fails: Load) -> None:
    err = fails('theme = "dark"\n')
    assert (err.line, err.field) == (1, "theme")
    assert "must be a table" in err.message


def test_agents_written_as_a_table(fails: Load) -> None:
    err = fails('[agents]\nhandle = "x"\n')
    assert (err.line, err.field) == (1, "agents")
    assert "[[agents]]" in err.message


def test_unknown_key_suggests_the_right_one(fails: Load) -> None:
    err = fails('[backend]\nspace = "a"\n\n[theme]\nnmae = "dark"\n')
    assert (err.line, err.field) == (5, "theme.nmae")
    assert err.message == "unknown key 'nmae' (did you mean 'name'?)"


def test_unknown_section(fails: Load) -> None:
    err = fails('[agent]\nhandle = "x"\n')
    assert (err.line, err.field) == (1, "agent")
    assert "did you mean 'agents'" in err.message


def test_unknown_key_in_an_inline_table_of_a_multiline_array(fails: Load) -> None:
    err = fails(
        """
[flows.mine]
title = "Mine"
view = "pipeline"
stages = [
  { name = "one", actor = "dara" },
  { name = "two", actr = "edwin" },
]
"""
    )
    found = {(i.line, i.field): i.message for i in err.issues}
    assert "did you mean 'actor'" in found[(6, "flows.mine.stages[1].actr")]
    assert found[(6, "flows.mine.stages[1].actor")] == "is required"


def test_missing_required_key_points_at_the_table(fails: Load) -> None:
    err = fails('[identity]\nhandle = "al"\n\n[[agents]]\nhandle = "zed"\n')
    assert (err.line, err.field) == (4, "agents[0].name")
    assert err.message == "is required"


def test_bad_binding_key(fails: Load) -> None:
    err = fails('[ui]\nmouse = true\n\n[keymap]\n"discussion.newline" = "shift+enter"\n')
    assert (err.line, err.field) == (5, "keymap.discussion.newline")
    assert "shift+enter is not delivered" in err.message and "tmux" in err.message


def test_multiplexer_prefix_key(fails: Load) -> None:
    err = fails("[keymap.editor]\nsave = 'ctrl+b'\n")
    assert (err.line, err.field) == (2, "keymap.editor.save")
    assert "tmux prefix" in err.message and "allow_multiplexer_keys" in err.message


def test_unknown_binding_id(fails: Load) -> None:
    err = fails('[keymap]\napp.quit = "ctrl+q"\nartifact.edti = "e"\n')
    assert (err.line, err.field) == (3, "keymap.artifact.edti")
    assert "did you mean 'artifact.edit'" in err.message


def test_binding_conflict_blames_the_changed_binding(fails: Load) -> None:
    err = fails('[keymap]\n"artifact.new" = "e"\n')
    assert (err.line, err.field) == (2, "keymap.artifact.new")
    assert "already bound to artifact.edit" in err.message


def test_binding_cannot_take_a_priority_global_key(fails: Load) -> None:
    err = fails('[keymap]\n"editor.save" = "ctrl+p"\n')
    assert "app.command_palette" in err.message and err.line == 2


def test_bad_cadence(fails: Load) -> None:
    err = fails("[streaming]\nui_interval_ms = 100\npersist_interval_ms = 150\n")
    assert (err.line, err.field) == (3, "streaming.persist_interval_ms")
    assert "must be >= 200" in err.message and "(got 150)" in err.message


def test_cadence_below_the_floor(fails: Load) -> None:
    err = fails("[streaming]\npersist_interval_ms = 10\n")
    assert (err.line, err.field) == (2, "streaming.persist_interval_ms")


def test_lock_timing(fails: Load) -> None:
    err = fails("[locks]\nlease_ttl_s = 20\nrenew_every_s = 15\n")
    assert (err.line, err.field) == (3, "locks.renew_every_s")
    assert "lease_ttl_s / 2" in err.message


def test_unknown_model_alias(fails: Load) -> None:
    err = fails('[[agents]]\nhandle = "quinn"\nmodel = "gtp4"\n')
    assert (err.line, err.field) == (3, "agents[0].model")
    assert "unknown model alias 'gtp4'" in err.message


def test_api_key_in_the_file_is_refused(fails: Load) -> None:
    err = fails('[models.aliases.mine]\nmodel = "openai/x"\napi_key = "sk-123"\n')
    assert err.field == "models.aliases.mine" and err.line == 1
    assert "api_key_env" in err.message


def test_api_key_env_holding_a_key(fails: Load) -> None:
    err = fails('[models.aliases.mine]\nmodel = "openai/x"\napi_key_env = "sk-abc123-xyz"\n')
    assert (err.line, err.field) == (3, "models.aliases.mine.api_key_env")


def test_flow_names_an_unknown_agent(fails: Load) -> None:
    err = fails('[flows.mine]\ntitle = "M"\nview = "discussion"\nagents = ["dara", "edwn"]\n')
    assert (err.line, err.field) == (4, "flows.mine.agents[1]")
    assert "did you mean 'edwin'" in err.message


def test_pipeline_without_stages(fails: Load) -> None:
    err = fails('[flows.mine]\ntitle = "M"\nview = "pipeline"\n')
    assert (err.line, err.field) == (1, "flows.mine.stages")


def test_bad_view_lists_the_choices(fails: Load) -> None:
    err = fails('[flows.mine]\ntitle = "M"\nview = "grid"\n')
    assert (err.line, err.field) == (3, "flows.mine.view")
    assert "'discussion', 'variations' or 'pipeline'" in err.message


def test_duplicate_handle_in_one_file(fails: Load) -> None:
    agent = '[[agents]]\nhandle = "zed"\nname = "Z"\n'
    err = fails(agent + "\n" + agent)
    assert (err.line, err.field) == (6, "agents[1].handle")
    assert "agents[0]" in err.message


def test_too_many_enabled_agents(fails: Load) -> None:
    err = fails('[[agents]]\nhandle = "zed"\nname = "Z"\n')
    assert (err.line, err.field) == (1, "agents")
    assert "at most 5" in err.message and "enabled = false" in err.message


def test_own_handle_taken_by_an_agent(fails: Load) -> None:
    err = fails('[identity]\nhandle = "quinn"\n')
    assert (err.line, err.field) == (2, "identity.handle")


def test_every_problem_is_reported(fails: Load) -> None:
    err = fails('[locks]\nlease_ttl_s = "x"\n[theme]\nname = "Bad Name"\n[ui]\nmouse = 3\n')
    assert [i.line for i in err.issues] == [2, 4, 6]
    assert len(str(err).splitlines()) == 3


def test_env_var_error_names_the_variable(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(env=env | {"COLLAB_THEME": "Not A Theme"})
    err = info.value
    assert err.source == "environment variable COLLAB_THEME"
    assert (err.path, err.line, err.field) == (None, None, "theme.name")
    assert str(err).startswith("environment variable COLLAB_THEME: theme.name: ")


def test_generic_env_var_with_unknown_key(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(env=env | {"COLLAB_LOCKS__TTL": "3"})
    assert info.value.source == "environment variable COLLAB_LOCKS__TTL"
    assert info.value.field == "locks.ttl"


def test_override_error_names_the_command_line(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(env=env, overrides={"backend.url": "ftp://x"})
    assert info.value.source == "command line" and info.value.field == "backend.url"


def test_error_in_a_preset_change_points_at_the_user_file(
    env: dict[str, str], write_cfg: Callable[[str], Path]
) -> None:
    path = write_cfg('[flows.writing]\nvariations = 0\n')
    with pytest.raises(ConfigError) as info:
        load_config(path, env=env)
    assert (info.value.path, info.value.line) == (path, 2)
    assert info.value.field == "flows.writing.variations"


def test_home_is_shown_as_tilde(env: dict[str, str]) -> None:
    home_file = Path.home() / ".collab-config-test-does-not-exist.toml"
    with pytest.raises(ConfigError) as info:
        load_config(home_file, env=env)
    assert str(info.value).startswith("~/.collab-config-test-does-not-exist.toml")


def test_direct_construction_is_validated_too() -> None:
    with pytest.raises(ValueError):
        Config.model_validate({"streaming": {"ui_interval_ms": 100, "persist_interval_ms": 150}})
    with pytest.raises(ValueError):
        Config.model_validate({"keymap": {"app.help": "ctrl+enter"}})


def test_load_config_text_uses_the_given_name(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError) as info:
        load_config_text("[ui]\nmouse = 3\n", "/etc/collab.toml", env=env)
    assert str(info.value).startswith("/etc/collab.toml:2: ui.mouse:")


def test_a_removed_key_says_why_it_went(fails: Load) -> None:
    """``locks.sweep_every_s`` was read by nothing (leases expire by a job at their end):
    removed, and a config that still sets it is told so, not merely "unknown key"."""
    err = fails("[locks]\nlease_ttl_s = 30\nsweep_every_s = 5\n")
    assert (err.line, err.field) == (3, "locks.sweep_every_s")
    assert err.message.startswith("was removed: leases are expired exactly at their end") and "delete this line" in err.message
