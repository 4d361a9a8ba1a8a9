"""Stateful property test of pipelines at the engine level, with a fake clock.

Random starts, stage work (agents stream their output, humans hand theirs in), approvals and
rejections (by the right approver or not, with or without a reason), cancels and retries by
whoever, outside edit attempts (acquire with or without waiting, save, restore), stale writes,
agent runs that die, and leases that run out. A small model predicts who is allowed what;
the backend must agree, and at every step:

- no write from outside a pipeline lands while it holds the artifact: every version made
  between a pipeline's start and its end is one of its approved stage outputs, and the lock
  row names the pipeline with nobody waiting;
- every rejection reason reaches the next attempt of that stage (in the agent's prompt, built
  by ``flows.prompts.stage_messages`` from what ``pipelines:get`` returns, and in the human
  actor's notification);
- attempts and versions are consistent: attempts of a stage are 1..n, at most one attempt is
  open, earlier stages end with exactly one approval, each approved content output is the
  version it names, the artifact's version counts outside saves plus approved outputs.
"""

from __future__ import annotations

import itertools
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from collab.flows.prompts import stage_messages
from tests.model._harness import T0, CallError, Harness, ident

OWNER, H1, H2 = ident("olga"), ident("hana"), ident("hugo")
A1, A2 = ident("ada", "agent"), ident("quinn", "agent")
WHO = [OWNER, H1, H2, A1, A2]
HUMANS = (0, 1, 2)
STAGES = [
    {"name": "draft", "actor": "ada", "approver": "human"},
    {"name": "critique", "actor": "quinn", "approver": "auto", "output": "notes"},
    {"name": "edit", "actor": "human", "approver": "quinn"},
    {"name": "polish", "actor": "human:hugo", "approver": "human:hana"},
]
MAX_ATTEMPTS = 2
TTL = 5_000.0
REASONS = ["", "   ", "too long", "the intro is missing", "say it plainly"]
_TEMPLATE: dict[str, Any] = {}


def _template() -> dict[str, Any]:
    if not _TEMPLATE:
        tmp = Path(tempfile.mkdtemp(prefix="pipes-template-"))
        h = Harness(tmp / "db.sqlite")
        space = h.call("spaces:create", {"name": "props"}, OWNER)
        code = h.call("spaces:invite", {"spaceId": space, "role": "editor"}, OWNER)["code"]
        for who in WHO[1:]:
            h.call("spaces:join", {"code": code}, who)
        art = h.call("artifacts:create", {"spaceId": space, "title": "Doc", "kind": "document", "content": "v1"},
                     OWNER)
        h.close()
        _TEMPLATE.update(path=tmp / "db.sqlite", space=space, art=art)
    return _TEMPLATE


def _matches(spec: str, who: int) -> bool:
    handle = WHO[who].claims["preferredUsername"]
    human = who in HUMANS
    if spec == "human":
        return human
    if spec.startswith("human:"):
        return human and handle == spec.split(":", 1)[1]
    return spec != "auto" and not human and handle == spec


class Pipelines(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        t = _template()
        self.tmp = Path(tempfile.mkdtemp(prefix="pipes-"))
        shutil.copy(t["path"], self.tmp / "db.sqlite")
        self.h = Harness(self.tmp / "db.sqlite", now=T0 + 1_000)
        self.space, self.art = t["space"], t["art"]
        self.keys = itertools.count()
        # the model
        self.pid: str | None = None  # the pipeline holding the artifact
        self.starter = -1
        self.status = ""
        self.stage = 0
        self.attempt = 0
        self.stage_status = ""
        self.holder: int | None = None
        self.expires = 0.0
        self.epoch = 0
        self.tokens: dict[int, int] = {}  # the last token each actor was granted
        self.stage_epoch: int | None = None  # the token of the hold the current attempt writes under
        self.version = 1
        self.windows: list[list[Any]] = []  # [pipelineId, version at start, version at end or None]
        self.stage_runs: dict[str, Any] = {}
        self.open_streams: set[str] = set()

    def teardown(self) -> None:
        self.h.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    # --- helpers -------------------------------------------------------------------------------

    def call(self, path: str, args: dict[str, Any], who: int) -> tuple[Any, str | None]:
        try:
            return self.h.call(path, args, WHO[who]), None
        except CallError as e:
            assert e.code is not None, f"{path}: not an error-as-data: {e}"
            return None, e.code

    def _lease_live(self) -> bool:
        return self.holder is not None and self.h.now < self.expires

    def _expire(self) -> None:
        if self.holder is not None and self.expires <= self.h.now:
            self.holder = None

    def _current(self) -> dict[str, Any]:
        assert self.pid is not None
        return self.h.call("pipelines:get", {"pipelineId": self.pid}, OWNER)["runs"][-1]

    def _spec(self) -> dict[str, Any]:
        return STAGES[self.stage]

    def _who(self, who: int, role: str) -> int:
        """``who`` 0-4 is anyone; 5-9 is someone who fills the current stage's ``role`` (actor
        or approver) if there is one, so the pipeline moves forward often enough to reach its
        later stages."""
        if who < 5:
            return who
        if self.pid is None:
            return who - 5
        fits = [i for i in range(5) if _matches(self._spec()[role], i)]
        return fits[who % len(fits)] if fits else who - 5

    def _end(self, status: str) -> None:
        event(f"pipeline {status}")
        self.windows[-1][2] = self.version
        self.pid, self.status = None, status

    def _next_stage(self) -> None:
        if self.stage + 1 < len(STAGES):
            self.stage, self.attempt, self.stage_status, self.status = self.stage + 1, 1, "working", "running"
            self.stage_epoch = None
        else:
            self._end("done")

    def _approved(self) -> None:
        if STAGES[self.stage].get("output", "content") == "content":
            self.version += 1
        self._next_stage()

    # --- rules ---------------------------------------------------------------------------------

    @initialize(who=st.sampled_from(HUMANS))
    def first(self, who: int) -> None:
        """Every run begins with a pipeline at work (later ones may start after it ends)."""
        self.start(who)

    @rule(who=st.sampled_from(HUMANS))
    def start(self, who: int) -> None:
        self._expire()
        got, code = self.call("pipelines:start", {"artifactId": self.art, "flow": "writing", "stages": STAGES,
                                                  "maxAttempts": MAX_ATTEMPTS}, who)
        ok = self.pid is None and self.holder is None
        event(f"start: {'ok' if ok else code}")
        if not ok:
            assert code == "LOCKED", code
            return
        assert code is None, code
        self.pid, self.starter, self.status = got["pipelineId"], who, "running"
        self.stage, self.attempt, self.stage_status, self.stage_epoch = 0, 1, "working", None
        self.windows.append([self.pid, self.version, None])

    @rule(who=st.integers(0, 9), wait=st.booleans())
    def acquire(self, who: int, wait: bool) -> None:
        """An outside edit attempt, or the stage's actor taking the lock for its stage."""
        who = self._who(who, "actor")
        self._expire()
        got, code = self.call("locks:acquire", {"artifactId": self.art, "ttlMs": TTL, "wait": wait}, who)
        if self.pid is not None:
            allowed = (self.status == "running" and self.stage_status == "working"
                       and _matches(self._spec()["actor"], who) and self.holder in (None, who))
            event(f"acquire in a pipeline: {'granted' if allowed else 'refused'}")
            if not allowed:
                assert code == "LOCKED", code
                return
        elif self.holder not in (None, who):
            # outside a pipeline someone else holds it: a waiter queues, then leaves the queue
            # at once (a queue would hand the lock over behind the model's back)
            if wait:
                assert code is None and got["status"] == "queued", (code, got)
                self.h.call("locks:leave", {"artifactId": self.art}, WHO[who])
            else:
                assert code == "LOCKED", code
            return
        assert code is None and got["status"] == "granted", (code, got)
        if self.holder != who:
            self.epoch += 1
            self.holder, self.expires = who, self.h.now + TTL
        if self.pid is not None:
            self.stage_epoch = self.epoch  # the attempt writes under this hold
        assert got["token"] == self.epoch
        self.tokens[who] = self.epoch

    @rule(who=st.integers(0, 4), restore=st.booleans())
    def outside_save(self, who: int, restore: bool) -> None:
        self._expire()
        token = self.tokens.get(who, 0)
        path = "artifacts:restore" if restore else "artifacts:save"
        extra = {"version": 1} if restore else {"content": f"saved by {who} at {self.h.now}"}
        got, code = self.call(path, {"artifactId": self.art, "token": token,
                                     "idempotencyKey": f"k{next(self.keys)}", **extra}, who)
        live = self.holder == who and token == self.epoch and self._lease_live()
        if live and self.pid is not None:
            event("save in a pipeline: refused")
            assert code == "PIPELINE_HOLDS", code
        elif live:
            assert code is None, code
            self.version += 1
            self.holder = None
        else:
            assert code in ("STALE_TOKEN", "NOT_HOLDER", "INVALID_TOKEN"), code

    @rule(who=st.integers(0, 9), empty=st.sampled_from([False, False, False, True]))
    def hand_in(self, who: int, empty: bool) -> None:
        """The stage's output: an agent streams it into its proposal, a human hands it in."""
        if self.pid is None:
            return
        who = self._who(who, "actor")
        self._expire()
        sr = self._current()
        token = self.tokens.get(who, 0)
        text = "  " if empty else f"output of {sr['stageName']} attempt {sr['attempt']:g} by {who}"
        live = (self.holder == who and token == self.epoch and self._lease_live() and self.status == "running"
                and self.stage_status == "working" and token == self.stage_epoch)
        if who not in HUMANS and sr.get("proposalId"):
            key = "k" * 16
            _, code = self.call("proposals:open", {"proposalId": sr["proposalId"], "key": key, "token": token}, who)
            if code is None:
                _, code = self.call("proposals:append", {"proposalId": sr["proposalId"], "text": text,
                                                         "token": token}, who)
            assert (code is None) == (live and sr["actorHandle"] == WHO[who].claims["preferredUsername"]), \
                (code, live)
            args = {"pipelineId": self.pid, "stageRunId": sr["_id"], "token": token}
        else:
            args = {"pipelineId": self.pid, "stageRunId": sr["_id"], "token": token, "content": text}
        _, code = self.call("pipelines:submit", args, who)
        event(f"hand in: {code or 'ok'}")
        if code is None:
            event(f"handed in at stage {self.stage}")
        if not live:
            assert code is not None
            return
        if empty:
            assert code == "INVALID_ARGUMENT", code
            return
        assert code is None, code
        self.holder = None
        if self._spec()["approver"] == "auto":
            self._approved()
        else:
            self.stage_status, self.status = "awaitingReview", "awaitingReview"

    @rule(who=st.integers(0, 9), approve=st.booleans(), reason=st.sampled_from(REASONS))
    def decide(self, who: int, approve: bool, reason: str) -> None:
        if self.pid is None:
            return
        who = self._who(who, "approver")
        sr = self._current()
        args = {"pipelineId": self.pid, "stageRunId": sr["_id"], "reason": reason}
        _, code = self.call("pipelines:approve" if approve else "pipelines:reject", args, who)
        event(f"{'approve' if approve else 'reject'}: {code or 'ok'}")
        if not approve and not reason.strip():
            assert code == "INVALID_ARGUMENT", code
            return
        if self.stage_status != "awaitingReview" or self.status != "awaitingReview":
            assert code == "STAGE_OVER", code
            return
        if not _matches(self._spec()["approver"], who):
            assert code == "FORBIDDEN", code
            return
        assert code is None, code
        if approve:
            self._approved()
        elif self.attempt >= MAX_ATTEMPTS:
            self.status, self.stage_status = "failed", "rejected"
        else:
            self.attempt, self.stage_status, self.status, self.stage_epoch = self.attempt + 1, "working", "running", None

    @rule(who=st.integers(0, 2), dice=st.integers(0, 2))
    def worker_dies(self, who: int, dice: int) -> None:
        """The agent run of the current stage (or review) ends without handing anything in."""
        if self.pid is None or dice:
            return
        sr = self._current()
        run_id = sr.get("runId") if self.stage_status == "working" else sr.get("reviewRunId")
        if not run_id:
            return
        run = self.h.call("runs:get", {"runId": run_id}, OWNER)
        self.call("runs:cancel", {"runId": run_id, "reason": "worker killed"}, who)
        if run["status"] in ("done", "failed", "cancelled") or self.status not in ("running", "awaitingReview"):
            return
        event("a stage's agent died")
        self.status = "failed"
        if self.stage_status == "working":
            self.stage_status = "failed"

    @rule(pick=st.integers(5, 9), approve=st.sampled_from([True, True, False]),
          reason=st.sampled_from(REASONS[2:]))
    def progress(self, pick: int, approve: bool, reason: str) -> None:
        """The right people do the next thing (the actor works and hands in, the approver
        decides), through the rules above, so the pipeline reaches its later stages."""
        if self.pid is None:
            return
        if self.stage_status == "working" and self.status == "running":
            self.acquire(pick, False)
            self.hand_in(pick, False)
        elif self.status == "awaitingReview":
            self.decide(pick, approve, reason)

    @rule(pick=st.integers(5, 9), approve=st.sampled_from([True, True, False]), reason=st.sampled_from(REASONS[2:]))
    def progress_again(self, pick: int, approve: bool, reason: str) -> None:
        """Twice as likely as any other rule."""
        self.progress(pick, approve, reason)

    @rule(who=st.sampled_from(HUMANS))
    def retry(self, who: int) -> None:
        if self.pid is None:
            return
        got, code = self.call("pipelines:retry", {"pipelineId": self.pid}, who)
        if who not in (self.starter, 0):
            assert code == "FORBIDDEN", code
            return
        if self.status != "failed":
            assert code == "NOT_FAILED", code
            return
        assert code is None, code
        event(f"retry after {self.stage_status}")
        if self.stage_status == "awaitingReview":
            self.status = "awaitingReview"
        else:
            self.attempt, self.stage_status, self.status, self.stage_epoch = self.attempt + 1, "working", "running", None
        assert got["attempt"] == self.attempt

    @rule(who=st.sampled_from(HUMANS), dice=st.integers(0, 3))
    def cancel(self, who: int, dice: int) -> None:
        if self.pid is None or dice:  # rarer than the rest, so pipelines get to their end
            return
        _, code = self.call("pipelines:cancel", {"pipelineId": self.pid}, who)
        if who not in (self.starter, 0):
            assert code == "FORBIDDEN", code
            return
        assert code is None, code
        self.holder = None
        self._end("cancelled")

    @rule(who=st.integers(0, 4))
    def release(self, who: int) -> None:
        self._expire()
        token = self.tokens.get(who, 0)
        _, code = self.call("locks:release", {"artifactId": self.art, "token": token}, who)
        if self.holder == who and token == self.epoch and self._lease_live():
            assert code is None, code
            self.holder = None
        else:
            assert code is not None

    @rule(ms=st.sampled_from([1_000.0, 6_000.0]))
    def time_passes(self, ms: float) -> None:
        self.h.advance(ms)
        self._expire()

    # --- invariants ----------------------------------------------------------------------------

    @invariant()
    def no_outside_write_while_a_pipeline_holds(self) -> None:
        db = self.h.db()
        lock = db.query("locks").with_index("by_artifact", lambda q: q.eq("artifactId", self.art)).unique()
        assert lock is not None and lock.get("pipelineId") == self.pid
        assert not db.query("lockWaiters").collect() or self.pid is None
        want = self.h.rows("versions")
        art = db.get(self.art)
        assert art is not None and art["version"] == self.version == len(want)
        for pid, first, last in self.windows:
            for ver in want:
                if first < ver["version"] <= (last if last is not None else self.version):
                    prov = ver.get("provenance") or {}
                    assert prov.get("kind") == "pipeline" and prov.get("pipelineId") == pid, \
                        f"version {ver['version']} landed in pipeline {pid}'s window from outside: {prov}"
        holder = lock.get("holderId")
        if holder is not None and self.pid is not None:
            # only the current stage's actor (an agent whose run died keeps its hold until its
            # lease ends, but can hand nothing in: its attempt is over)
            sr = self._current()
            assert sr.get("actorId") == holder and (sr["status"] == "working" or sr.get("actorKind") == "agent")

    @invariant()
    def attempts_reasons_and_versions_are_consistent(self) -> None:
        if not self.windows:
            return
        for pid, _, _ in self.windows[-2:]:
            got = self.h.call("pipelines:get", {"pipelineId": pid}, OWNER)
            p, runs = got["pipeline"], got["runs"]
            if pid == self.pid:
                assert (p["status"], p["current"], runs[-1]["attempt"]) == (self.status, self.stage, self.attempt)
                assert runs[-1]["status"] == self.stage_status
            assert [r for r in runs if r["status"] in ("working", "awaitingReview")] in ([], [runs[-1]])
            for stage in range(int(p["current"]) + 1):
                mine = [r for r in runs if r["stage"] == stage]
                assert [r["attempt"] for r in mine] == list(range(1, len(mine) + 1))
                if stage < p["current"]:
                    assert [r["status"] for r in mine][-1] == "approved"
                    assert all(r["status"] in ("rejected", "failed") for r in mine[:-1])
                for r in mine:
                    if r["status"] == "approved" and p["stages"][stage]["output"] == "content":
                        ver = self.h.call("artifacts:version", {"artifactId": self.art,
                                                                "version": r["outputVersion"]}, OWNER)
                        assert ver["content"] == r["output"] and ver["provenance"]["stageRunId"] == r["_id"]
                        assert ver["provenance"]["approver"] == r["reviewer"]["handle"]
                # every rejection reason reaches the next attempt of that stage
                for r in mine:
                    later = [x for x in mine if x["attempt"] > r["attempt"]]
                    if r["status"] != "rejected" or not later:
                        continue
                    nxt = later[0]
                    art = self.h.call("artifacts:get", {"artifactId": self.art}, OWNER)
                    prompt = stage_messages(handle="x", name="X", persona="", role="agent", pipeline=p, runs=runs,
                                            stage_run=nxt, artifact=art, input_content="(input)")[1]["content"]
                    assert r["reason"] in prompt, (r["reason"], prompt)
                    if r.get("actorKind") == "human":
                        notes = self.h.call("notifications:list", {"limit": 200}, WHO[_index(r["actorHandle"])])
                        assert any(n["kind"] == "stageRejected" and r["reason"] in n["text"] for n in notes)


def _index(handle: str) -> int:
    return next(i for i, w in enumerate(WHO) if w.claims["preferredUsername"] == handle)


Pipelines.TestCase.settings = settings(
    max_examples=int(__import__("os").environ.get("PIPELINE_EXAMPLES", "150")), stateful_step_count=40,
    deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestPipelines = Pipelines.TestCase
TestPipelines.pytestmark = [pytest.mark.timeout(900)]
