"""``collab doctor`` checks for real, as a process: the local model's weights are loaded, a
hosted model answers a one-token request with ``--online`` (the loopback OpenAI server) and is
reported as not contacted without it, and the clipboard is probed with an OSC 52 query in a
pseudo-terminal the test plays, or reported as unknown when there is no terminal."""

from __future__ import annotations

import asyncio
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from collab.flows.testing.openai_server import OpenAIStreamServer, Reply

pytestmark = [pytest.mark.timeout(120), pytest.mark.filterwarnings("ignore::DeprecationWarning")]

DOCTOR = [sys.executable, "-m", "collab.tui.cli", "doctor", "--no-start"]


def _env(tmp: Path, config: str) -> dict[str, str]:
    (tmp / "config.toml").write_text(f'[backend]\ndata_dir = "{tmp / "data"}"\n' + config)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COLLAB_", "TMUX"))}
    return {**env, "COLLAB_CONFIG": str(tmp / "config.toml"), "TERM": "xterm-256color"}


def _lines(out: str, prefix: str) -> list[str]:
    return [line for line in out.splitlines() if prefix in line]


def test_the_local_model_is_loaded_and_a_broken_one_fails(tmp_path: Path) -> None:
    config = ('[models.aliases.broken]\nmodel = "local/nope"\n'
              '[[agents]]\nhandle = "polly"\nmodel = "broken"\n')
    done = subprocess.run(DOCTOR, capture_output=True, text=True, timeout=100, env=_env(tmp_path, config))
    out = done.stdout
    assert done.returncode == 1, out
    local = _lines(out, "model of @rhea @dara @edwin @quinn:")
    assert len(local) == 1 and local[0].startswith("[ok  ]") and "local/smollm2 (offline) loaded in" in local[0], out
    broken = _lines(out, "model of @polly:")
    assert broken == ["[FAIL] model of @polly: local/nope (offline) does not load: "
                      "no local model named 'nope' (known: local/smollm2)"], out
    # no terminal here: the clipboard cannot be probed, so it is not claimed to work
    assert _lines(out, "] clipboard") == ["[warn] clipboard: unknown: not run in a terminal, so OSC 52 could "
                                          "not be probed"], out


async def test_hosted_models_are_contacted_only_with_online(tmp_path: Path) -> None:
    config_lines = ['[models]', 'default = "local"']
    for handle in ("quinn", "rhea"):
        config_lines += [f"[models.aliases.m_{handle}]", f'model = "openai/{handle}"', 'api_base = "BASE"', ""]
    for handle in ("quinn", "rhea"):
        config_lines += ["[[agents]]", f'handle = "{handle}"', f'model = "m_{handle}"', ""]
    config_lines += ['[[agents]]\nhandle = "dara"\nenabled = false', '[[agents]]\nhandle = "edwin"\nenabled = false',
                     '[[agents]]\nhandle = "polly"\nenabled = false']
    async with OpenAIStreamServer() as server:
        server.script("quinn", "OK")
        server.script("rhea", Reply.error(401))
        env = _env(tmp_path, "\n".join(config_lines).replace("BASE", server.base_url) + "\n")

        async def doctor(*extra: str) -> str:
            proc = await asyncio.create_subprocess_exec(*DOCTOR, *extra, env=env, stdout=asyncio.subprocess.PIPE,
                                                        stderr=asyncio.subprocess.PIPE)
            out, _ = await asyncio.wait_for(proc.communicate(), 100)
            return out.decode()

        offline = await doctor()
        assert _lines(offline, "model of @quinn") == [
            "[skip] model of @quinn: openai/quinn: key set, not contacted (--online sends a one-token request)"]
        assert server.requests_for("quinn") == [] and server.requests_for("rhea") == []

        online = await doctor("--online")
        ok = _lines(online, "model of @quinn")
        assert len(ok) == 1 and ok[0].startswith("[ok  ] model of @quinn: openai/quinn answered 'OK' in "), online
        refused = _lines(online, "model of @rhea")
        assert len(refused) == 1 and refused[0].startswith("[FAIL] model of @rhea: ") and "rhea" in refused[0], online
        assert "key" in refused[0].lower() or "auth" in refused[0].lower(), refused
        asked = server.requests_for("quinn")
        assert len(asked) == 1 and asked[0].body["max_tokens"] == 1


def _doctor_in_a_pty(tmp: Path, answer: bytes) -> str:
    """Run doctor on a pseudo-terminal; when it sends its queries, the test answers as the
    terminal would (``answer``). Returns everything doctor wrote."""
    env = _env(tmp, '[[agents]]\nhandle = "rhea"\nenabled = false\n[[agents]]\nhandle = "dara"\nenabled = false\n'
                    '[[agents]]\nhandle = "edwin"\nenabled = false\n[[agents]]\nhandle = "quinn"\nenabled = false\n'
                    '[[agents]]\nhandle = "polly"\nenabled = false\n')
    master, slave = pty.openpty()
    proc = subprocess.Popen(DOCTOR, stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True)
    os.close(slave)
    out, answered = b"", False
    deadline = time.monotonic() + 100
    try:
        while time.monotonic() < deadline:
            ready = select.select([master], [], [], 0.5)[0]
            if ready:
                try:
                    chunk = os.read(master, 4096)
                except OSError:  # the child closed the terminal
                    break
                if not chunk:
                    break
                out += chunk
                if not answered and b"\x1b]52;c;?\x07\x1b[c" in out:
                    os.write(master, answer)
                    answered = True
            elif proc.poll() is not None:
                break
    finally:
        proc.wait(timeout=30)
        os.close(master)
    assert answered, out
    return out.replace(b"\x1b]52;c;?\x07\x1b[c", b"").decode(errors="replace").replace("\r\n", "\n")


@pytest.mark.parametrize("terminal", ["answers", "stays silent"])
def test_the_clipboard_is_probed_with_an_osc52_query(terminal: str, tmp_path: Path) -> None:
    da1 = b"\x1b[?62;22c"
    answer = (b"\x1b]52;c;aGVsbG8=\x07" + da1) if terminal == "answers" else da1
    out = _doctor_in_a_pty(tmp_path, answer)
    clip = _lines(out, "] clipboard")
    if terminal == "answers":
        assert clip == ["[ok  ] clipboard: OSC 52: the terminal answered a clipboard query"], out
    else:
        assert len(clip) == 1 and clip[0].startswith("[warn] clipboard: unknown: the terminal did not answer"), out
    assert "[ok  ] terminal output: stdout is a terminal" in out
