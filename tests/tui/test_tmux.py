"""End to end in tmux: real ``collab`` processes in real terminals, one backend.

Pane A (alice) locks and edits an artifact; pane B (bob, 60 columns) shows the lock badge with
alice's name; A saves; B shows the new content and version without a key pressed in B.
Also: the first run on a fresh HOME ends on the space screen with the default agents.
"""

from __future__ import annotations

import shutil

import pytest

from .tmuxer import Tmux, tmux  # noqa: F401 (the fixture)

pytestmark = [pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
              pytest.mark.timeout(120)]


def test_first_run_lands_on_space_with_default_agents(tmux: Tmux) -> None:
    tmux.start("a", "alice", 80)
    text = tmux.wait("a", lambda s: "@polly" in s and "● live" in s)
    assert "main" in text and all(f"@{h}" in text for h in ("rhea", "dara", "edwin", "quinn"))
    assert (tmux.home / "config" / "collab" / "config.toml").read_text().startswith("# collab configuration")
    assert (tmux.home / "data" / "collab" / "backend.json").exists()


def test_two_panes_one_backend_live_lock_and_save(tmux: Tmux) -> None:
    tmux.start("a", "alice", 80)
    tmux.wait("a", lambda s: "● live" in s and "@polly" in s)
    tmux.send("a", "n")
    tmux.wait("a", lambda s: "Title of the new artifact" in s)
    tmux.send("a", "Release notes", "Enter")
    tmux.wait("a", lambda s: "Release notes v1" in s)

    tmux.start("b", "bob", 60)  # joins the same backend and space (a second tmux pane)
    tmux.wait("b", lambda s: "Release notes v1" in s and "● live" in s)

    # `e` and the text in one burst, no pause: keys typed while the lock is being taken must
    # land in the editor (they used to reach the space screen: `h` opened the history).
    tmux.send("a", "e")
    tmux.send("a", "-l", "Shipped the live lock badges. ")
    tmux.wait("a", lambda s: "EDITING" in s and "Shipped the live lock badges." in s)
    tmux.wait("b", lambda s: "■ @alice" in s)  # B shows the lock badge with A's name
    tmux.send("a", "C-s")
    tmux.wait("a", lambda s: "EDITING" not in s)
    # B updates by itself: new version, new content, badge gone; no key was sent to B.
    text = tmux.wait("b", lambda s: "Release notes v2" in s and "Shipped the live" in s and "■ @alice" not in s)
    assert "v2 by @alice" in text
