"""Variations end to end in tmux, two humans on one backend whose agents' worker streams from
the loopback OpenAI-compatible server (real litellm HTTP/SSE): alice (100 columns) starts 3
variations from the composer; bob (60 columns) watches them stream and stars one; alice sees the
star and picks it; both panes show the new version. No key is pressed in a pane to make it see
what the other did."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from collab.flows.testing.openai_server import OpenAIStreamServer, RecordedRequest, Reply

from .tmuxer import Tmux, tmux  # noqa: F401 (the fixture)

pytestmark = [pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
              pytest.mark.timeout(240)]


def _take(req: RecordedRequest) -> str:
    t = req.body.get("temperature")
    return f"Take at temperature {t}\n" + " ".join(f"line{i}" for i in range(80))


@pytest.fixture
def loopback() -> Iterator[OpenAIStreamServer]:
    with OpenAIStreamServer.in_thread() as server:
        server.script("vary", Reply(_take, tokens_per_second=6))
        yield server


def test_two_humans_start_watch_star_and_pick_variations(tmux: Tmux, loopback: OpenAIStreamServer) -> None:
    config = tmux.home / "config" / "collab"
    config.mkdir(parents=True)
    (config / "config.toml").write_text(
        f'[models]\ndefault = "loop"\n\n[models.aliases.loop]\nmodel = "openai/vary"\n'
        f'api_base = "{loopback.base_url}"\n')
    tmux.start("a", "alice", 100, 30)
    tmux.wait("a", lambda s: "● live" in s and "@polly" in s)
    tmux.send("a", "n")
    tmux.wait("a", lambda s: "Title of the new artifact" in s)
    tmux.send("a", "Plan", "Enter")
    tmux.wait("a", lambda s: "Plan  v1 by @alice" in s)
    # Bob opens Plan's variations before there are any.
    tmux.start("b", "bob", 60)
    tmux.wait("b", lambda s: "Plan  v1 by @alice" in s and "● live" in s)
    tmux.send("b", "v")
    tmux.wait("b", lambda s: "No rounds yet" in s)
    assert tmux.size("b") == "60x24"

    tmux.send("a", "F4")
    tmux.send("a", "-l", "/vary 3 #plan make it better")
    tmux.send("a", "Enter")
    tmux.wait("a", lambda s: "Variations" in s and "round 1/1" in s and "make it better" in s)
    # Bob watches the round appear and stream: the text grows in his pane with no key pressed.
    tmux.wait("b", lambda s: "round 1/1" in s and "● writing" in s and "Take at temperature" in s)
    tmux.wait("b", lambda s: "● writing" in s and "line9" in s)
    # Bob stars #2; alice's pane shows the star by itself.
    tmux.send("b", "l")
    tmux.wait("b", lambda s: "[2/3]" in s)
    tmux.send("b", "s")
    tmux.wait("b", lambda s: "★ #2" in s)
    tmux.wait("a", lambda s: "★ #2" in s)
    # Alice picks #2 once it is done.
    tmux.wait("a", lambda s: "3 done" in s)
    tmux.send("a", "l")
    tmux.send("a", "p")
    tmux.wait("a", lambda s: "Make #2 the next version of Plan?" in s)
    tmux.send("a", "y")
    tmux.wait("a", lambda s: "#plan v2" in s and "#2 became v2" in s)
    # Bob's pane shows the new version and the pick with no key pressed.
    tmux.wait("b", lambda s: "#plan v2" in s and "#2 became v2" in s)
    tmux.send("b", "Escape")
    tmux.wait("b", lambda s: "Plan v2" in s and "Take at temperature" in s)
    assert len(loopback.requests_for("vary")) == 3
