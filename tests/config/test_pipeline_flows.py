"""Pipelines in the config: the presets' stages (with notes and attempts), a user-defined
pipeline in ``[flows.<name>]``, and its mistakes reported with file, line and field."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from collab.config import ConfigError, default_config, load_config


def test_presets_describe_their_stages() -> None:
    cfg = default_config({"USER": "alice"})
    writing, review = cfg.flow("writing"), cfg.flow("review")
    assert [(s.name, s.actor, s.approver, s.output) for s in writing.stages] == [
        ("draft", "dara", "human", "content"), ("edit", "edwin", "human", "content"),
        ("polish", "polly", "human", "content")]
    assert [s.output for s in review.stages] == ["notes", "content"]
    assert writing.max_attempts == review.max_attempts == 3


def test_a_user_pipeline(write_cfg: Callable[..., Path], env: dict[str, str]) -> None:
    cfg = load_config(write_cfg('''
[flows.spec]
title = "Spec"
view = "pipeline"
max_attempts = 5

[[flows.spec.stages]]
name = "draft"
actor = "human:bob"
approver = "quinn"

[[flows.spec.stages]]
name = "critique"
actor = "quinn"
approver = "auto"
output = "notes"
'''), env=env)
    spec = cfg.flow("spec")
    assert spec.max_attempts == 5 and [(s.actor, s.approver, s.output) for s in spec.stages] == [
        ("human:bob", "quinn", "content"), ("quinn", "auto", "notes")]


@pytest.mark.parametrize("body,expected", [
    ('max_attempts = 0\n[[flows.mine.stages]]\nname = "d"\nactor = "dara"\n',
     ":4: flows.mine.max_attempts: must be >= 1 (got 0)"),
    ('[[flows.mine.stages]]\nname = "d"\nactor = "dara"\noutput = "prose"\n',
     ":7: flows.mine.stages[0].output: must be one of 'content' or 'notes' (got \"prose\")"),
    ('[[flows.mine.stages]]\nname = "d"\nactor = "auto"\n',
     ':6: flows.mine.stages[0].actor: must be an agent handle, "human" or "human:<handle>" (got \'auto\')'),
    ('[[flows.mine.stages]]\nname = "d"\nactor = "nobody"\n',
     ":6: flows.mine.stages[0].actor: no agent with handle 'nobody'"),
])
def test_mistakes_name_file_line_and_field(write_cfg: Callable[..., Path], env: dict[str, str], body: str,
                                           expected: str) -> None:
    path = write_cfg('[flows.mine]\ntitle = "Mine"\nview = "pipeline"\n' + body)
    with pytest.raises(ConfigError) as exc:
        load_config(path, env=env)
    assert f"{path}{expected}" in str(exc.value), str(exc.value)
