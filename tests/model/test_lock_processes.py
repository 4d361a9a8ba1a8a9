"""Locks against a real ``collab serve`` subprocess: contention between client processes, and
a holder frozen with SIGSTOP past its lease."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from collab.backend.testing import BackendProcess

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = "collab.backend.model"


def call(url: str, token: str, kind: str, path: str, args: dict[str, Any]) -> Any:
    r = httpx.post(f"{url}/api/{kind}", json={"path": path, "args": args},
                   headers={"Authorization": f"Bearer {token}"}, timeout=30)
    body = r.json()
    if body["status"] != "success":
        raise RuntimeError(json.dumps(body.get("errorData") or body["errorMessage"]))
    return body["value"]


def whole_audit_log(url: str, token: str, space: str, artifact: str) -> list[dict[str, Any]]:
    """Every audit row of the artifact, oldest first (audit:list serves at most 1000)."""
    rows: list[dict[str, Any]] = []
    cursor = None
    while True:
        got = call(url, token, "query", "audit:page",
                   {"spaceId": space, "artifactId": artifact, "numItems": 1000, "cursor": cursor})
        rows += got["page"]
        if got["isDone"]:
            return rows[::-1]
        cursor = got["continueCursor"]


def setup_space(b: BackendProcess, handles: list[tuple[str, bool]]) -> tuple[str, str, dict[str, str]]:
    owner = b.mint_token("owner")
    space = call(b.url, owner, "mutation", "spaces:create", {"name": "contention"})
    code = call(b.url, owner, "mutation", "spaces:invite", {"spaceId": space, "role": "editor"})["code"]
    tokens = {}
    for handle, agent in handles:
        tokens[handle] = b.mint_token(handle, agent=agent)
        call(b.url, tokens[handle], "mutation", "spaces:join", {"code": code})
    artifact = call(b.url, owner, "mutation", "artifacts:create",
                    {"spaceId": space, "title": "hot doc", "kind": "document", "content": "v1"})
    return space, artifact, {"owner": owner, **tokens}


CLIENTS = int(os.environ.get("COLLAB_LOCK_CLIENTS", "10"))
CYCLES = int(os.environ.get("COLLAB_LOCK_CYCLES", "200"))


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_contention_no_overlap_fifo(tmp_path: Path) -> None:
    handles = [(f"c{i}", i % 2 == 1) for i in range(CLIENTS)]  # half humans, half agents
    with BackendProcess(tmp_path / "data", functions=FUNCTIONS) as b:
        space, artifact, tokens = setup_space(b, handles)
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        t0 = time.monotonic()
        procs = [subprocess.Popen([sys.executable, "-m", "tests.model._contender", b.url, tokens[h], artifact,
                                   str(CYCLES), h], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE) for h, _ in handles]
        results = []
        for p in procs:
            out, err = p.communicate(timeout=540)
            assert p.returncode == 0, err.decode()[-3000:]
            results.append(json.loads(out))
        elapsed = time.monotonic() - t0
        events = whole_audit_log(b.url, tokens["owner"], space, artifact)
        final = call(b.url, tokens["owner"], "query", "artifacts:get", {"artifactId": artifact})

    total = CLIENTS * CYCLES
    assert sum(len(r["saved"]) for r in results) == total
    assert final["version"] == total + 1 and not final["lock"]["held"]
    # Replay the audit log: never two live holds, epochs strictly increasing, and every grant
    # from the queue goes to the head of the FIFO queue as the log recorded it.
    live: dict[str, Any] | None = None
    queue: list[str] = []
    last_epoch, grants, overlaps, fifo_violations = 0, 0, 0, 0
    for ev in events:
        d = ev["data"]
        if ev["type"] == "lock.queued":
            queue.append(d["actorId"])
        elif ev["type"] == "lock.left":
            queue.remove(d["actorId"])
        elif ev["type"] == "lock.granted":
            grants += 1
            if live is not None:
                overlaps += 1
            assert d["epoch"] > last_epoch
            last_epoch = d["epoch"]
            if d["via"] == "queue":
                if not queue or queue[0] != d["holderId"]:
                    fifo_violations += 1
                else:
                    queue.pop(0)
            elif queue:
                fifo_violations += 1  # a direct grant while others waited
            live = d
        elif ev["type"] == "lock.released":
            assert live is not None and live["epoch"] == d["epoch"], "release of a hold that is not live"
            live = None
    assert grants == total and overlaps == 0 and fifo_violations == 0
    assert not queue
    saved_tokens = sorted(t for r in results for t, _ in r["saved"])
    assert saved_tokens == list(range(1, total + 1)), "each grant saved exactly once"
    queued = sum(r["queued"] for r in results)
    print(f"\n{CLIENTS} processes x {CYCLES} cycles: {total} holds in {elapsed:.1f}s "
          f"({total / elapsed:.0f} acquire+save/s), {queued} waited in the queue, 0 overlaps, FIFO kept")


@pytest.mark.timeout(120)
def test_sigstopped_holder_is_fenced(tmp_path: Path) -> None:
    """A holder frozen (SIGSTOP) past its lease: the lock expires, another actor takes it and
    saves; the frozen one resumes and its late delta and save are rejected as stale."""
    with BackendProcess(tmp_path / "data", functions=FUNCTIONS) as b:
        _space, artifact, tokens = setup_space(b, [("sleepy", True), ("next", False)])
        script = (
            "import json, sys, httpx\n"
            "url, tok, art = sys.argv[1:4]\n"
            "def call(path, args):\n"
            "    r = httpx.post(url + '/api/mutation', json={'path': path, 'args': args},\n"
            "                   headers={'Authorization': 'Bearer ' + tok}, timeout=30).json()\n"
            "    return r.get('value') if r['status'] == 'success' else {'error': r.get('errorData')}\n"
            "got = call('locks:acquire', {'artifactId': art, 'ttlMs': 1000})\n"
            "print(json.dumps(got), flush=True)\n"
            "sys.stdin.readline()  # SIGSTOP arrives while we wait here; SIGCONT, then a line\n"
            "t = got['token']\n"
            "print(json.dumps(call('drafts:append', {'artifactId': art, 'token': t, 'text': 'late'})), flush=True)\n"
            "print(json.dumps(call('artifacts:save', {'artifactId': art, 'token': t, 'content': 'CLOBBER'})), flush=True)\n"
        )
        p = subprocess.Popen([sys.executable, "-c", script, b.url, tokens["sleepy"], artifact],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert p.stdout is not None and p.stdin is not None
        first = json.loads(p.stdout.readline())
        assert first["status"] == "granted"
        os.kill(p.pid, signal.SIGSTOP)
        try:
            # the sweeper (a scheduled locks:expire) frees the lock once the 1 s lease ends
            deadline = time.monotonic() + 20
            while call(b.url, tokens["owner"], "query", "artifacts:get", {"artifactId": artifact})["lock"]["held"]:
                assert time.monotonic() < deadline, "lease never expired"
                time.sleep(0.1)
            nxt = call(b.url, tokens["next"], "mutation", "locks:acquire", {"artifactId": artifact})
            assert nxt["status"] == "granted" and nxt["token"] == first["token"] + 1
            call(b.url, tokens["next"], "mutation", "drafts:append",
                 {"artifactId": artifact, "token": nxt["token"], "text": "good"})
            saved = call(b.url, tokens["next"], "mutation", "artifacts:save",
                         {"artifactId": artifact, "token": nxt["token"], "content": "next holder's text"})
        finally:
            os.kill(p.pid, signal.SIGCONT)
        p.stdin.write("go\n")
        p.stdin.flush()
        late_delta = json.loads(p.stdout.readline())
        late_save = json.loads(p.stdout.readline())
        p.wait(timeout=30)
        art = call(b.url, tokens["owner"], "query", "artifacts:get", {"artifactId": artifact})
        orphans = call(b.url, tokens["owner"], "query", "drafts:list", {"artifactId": artifact})
        notes = call(b.url, tokens["sleepy"], "query", "notifications:list", {})

    for late in (late_delta, late_save):
        assert late["error"]["code"] == "STALE_TOKEN" and late["error"]["reason"] == "expired", late
    assert art["content"] == "next holder's text" and art["version"] == saved["version"] == 2
    assert orphans == [], "the frozen holder never wrote a delta: nothing to keep"
    assert any(n["kind"] == "lockLost" for n in notes)
