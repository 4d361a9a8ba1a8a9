"""End to end in tmux: two humans run the writing pipeline on one embedded backend, whose worker
streams the agents from the loopback OpenAI server (the config in HOME points the agents at
it). Alice (80 columns) starts it and approves; Bob (60 columns) watches the track move with no
key pressed in his pane, and approves a stage himself."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from collab.flows.testing.openai_server import OpenAIStreamServer, Reply
from tests.flows._world import config_text
from tests.tui.test_tmux import Tmux

pytestmark = [pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
              pytest.mark.timeout(180)]

OUT = {"dara": "A lock waits. The queue\nmoves one name at a time. Then\nthe token is yours.",
       "edwin": "A lock waits; the queue\nmoves one name at a time, then\nthe token is yours.",
       "polly": "The lock waits; the queue\nmoves one name at a time. Then:\nthe token is yours."}


@pytest.fixture
def server() -> Iterator[OpenAIStreamServer]:
    with OpenAIStreamServer.in_thread() as srv:
        for handle, text in OUT.items():
            srv.script(handle, Reply(text, tokens_per_second=40))
        yield srv


@pytest.fixture
def tmux(tmp_path: Path, server: OpenAIStreamServer) -> Iterator[Tmux]:
    t = Tmux(tmp_path)
    cfg = tmp_path / "config" / "collab" / "config.toml"
    cfg.parent.mkdir(parents=True)
    cfg.write_text(config_text(server.base_url, {h: h for h in OUT}))
    yield t
    t.close()


def test_one_approves_the_other_watches_the_track_move(tmux: Tmux) -> None:
    tmux.start("a", "alice", 80)
    tmux.wait("a", lambda s: "● live" in s and "@polly" in s)
    tmux.send("a", "n")
    tmux.wait("a", lambda s: "Title of the new artifact" in s)
    tmux.send("a", "Lock haiku", "Enter")
    tmux.wait("a", lambda s: "Lock haiku v1" in s)
    tmux.start("b", "bob", 60)
    tmux.wait("b", lambda s: "Lock haiku v1" in s and "● live" in s)

    tmux.send("a", "p")  # no pipeline yet: the flows to start one
    tmux.wait("a", lambda s: "Writing  draft -> edit -> polish" in s)
    tmux.send("a", "Down", "Enter")
    tmux.wait("a", lambda s: "draft ● -> edit ○ -> polish ○" in s and "Your review is needed" in s, timeout=60)
    # Bob's tree shows the pipeline holding it; his edit is refused with the reason
    tmux.wait("b", lambda s: "⚙ Writing" in s)
    tmux.send("b", "e")
    tmux.wait("b", lambda s: "pipeline holds this artifact" in s)
    tmux.send("b", "p")
    tmux.wait("b", lambda s: "draft ● -> edit ○ -> polish ○" in s and "queue" in s)
    # Alice approves: Bob's track moves by itself, and he sees the editor's output stream in
    tmux.send("a", "a")
    tmux.wait("b", lambda s: "draft ✓ -> edit ●" in s, timeout=30)
    # the attempt's own line, not a toast: "review needed" toasts come when the output is handed
    # in, and a key pressed before this screen's track has the review is not offered yet
    tmux.wait("b", lambda s: "edit  @edwin  #1  awaiting review" in s and "the token is yours." in s, timeout=60)
    tmux.send("b", "a")  # Bob approves the edit; Alice's pane follows
    tmux.wait("a", lambda s: "draft ✓ -> edit ✓ -> polish ●" in s, timeout=30)
    tmux.wait("a", lambda s: "polish  @polly  #1  awaiting review" in s and "Then:" in s, timeout=60)
    tmux.send("a", "a")
    tmux.wait("b", lambda s: "draft ✓ -> edit ✓ -> polish ✓" in s and "Done" in s, timeout=30)
    tmux.send("b", "Escape")
    tmux.wait("b", lambda s: "Lock haiku v4" in s)
