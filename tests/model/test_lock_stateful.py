"""Stateful property test of the lock protocol at the engine level, with a fake clock.

A reference model (FIFO queue, epochs, leases) predicts every answer; the backend must agree.
Invariants at every commit: at most one live hold per artifact; tokens (epochs) strictly
increasing without gaps; every accepted write (renew, delta, save, release) carried the
current token of a live lease, and every version names the hold that saved it.
"""

from __future__ import annotations

import itertools
import shutil
import tempfile
from pathlib import Path
from typing import Any

from collab.backend.model._lockcore import renew_slack_ms
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from tests.model._harness import T0, CallError, Harness, ident

HUMANS = [ident(f"h{i}") for i in range(5)]
AGENTS = [ident(f"a{i}", "agent") for i in range(5)]
ACTORS = HUMANS + AGENTS  # ACTORS[0] owns the space; the others are editors
N_ART = 3
TTLS = [1_000.0, 5_000.0, 30_000.0]

_TEMPLATE: dict[str, Any] = {}


def _template() -> dict[str, Any]:
    """Build the space once (10 members, 3 artifacts) and copy its database per example."""
    if not _TEMPLATE:
        tmp = Path(tempfile.mkdtemp(prefix="locks-template-"))
        h = Harness(tmp / "db.sqlite")
        space = h.call("spaces:create", {"name": "props"}, ACTORS[0])
        code = h.call("spaces:invite", {"spaceId": space, "role": "editor"}, ACTORS[0])["code"]
        for who in ACTORS[1:]:
            h.call("spaces:join", {"code": code}, who)
        arts = [h.call("artifacts:create", {"spaceId": space, "title": f"doc {i}", "kind": "document",
                                            "content": "v1"}, ACTORS[0]) for i in range(N_ART)]
        actor_ids = [h.call("actors:me", {}, who)["_id"] for who in ACTORS]
        h.close()
        _TEMPLATE.update(path=tmp / "db.sqlite", space=space, arts=arts, actor_ids=actor_ids)
    return _TEMPLATE


class LockProtocol(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        t = _template()
        self.tmp = Path(tempfile.mkdtemp(prefix="locks-"))
        shutil.copy(t["path"], self.tmp / "db.sqlite")
        self.h = Harness(self.tmp / "db.sqlite", now=T0 + 1_000)
        self.arts: list[str] = t["arts"]
        self.actor_ids: list[str] = t["actor_ids"]
        self.h.engine.commit_listeners.append(self._at_commit)
        # the model
        self.epoch = [0] * N_ART
        self.holder: list[int | None] = [None] * N_ART
        self.expires = [0.0] * N_ART
        self.ttl = [0.0] * N_ART
        self.queue: list[list[tuple[int, float]]] = [[] for _ in range(N_ART)]
        self.token: dict[tuple[int, int], int] = {}
        self.versions = [1] * N_ART
        self.last_save: dict[tuple[int, int], tuple[dict[str, Any], Any]] = {}
        self.keys = itertools.count()
        self.commits = 0

    def teardown(self) -> None:
        self.h.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    # --- the model's transitions ---------------------------------------------------------------

    def _grant(self, a: int, actor: int, ttl: float) -> None:
        self.epoch[a] += 1
        self.holder[a], self.ttl[a], self.expires[a] = actor, ttl, self.h.now + ttl

    def _end_and_grant_next(self, a: int) -> None:
        self.holder[a] = None
        if self.queue[a]:
            actor, ttl = self.queue[a].pop(0)
            self._grant(a, actor, ttl)
            self.token[(actor, a)] = self.epoch[a]

    def _lazy_expire(self, a: int) -> None:
        if self.holder[a] is not None and self.expires[a] <= self.h.now:
            self._end_and_grant_next(a)

    def _write_ok(self, actor: int, a: int, token: int) -> bool:
        return self.holder[a] == actor and self.epoch[a] == token and self.h.now < self.expires[a]

    def _who(self, actor: int, a: int) -> int:
        """Half of the writes come from the model's holder, so the edges (lease just expired,
        token just superseded) are reached often."""
        if actor >= 10:
            return self.holder[a] if self.holder[a] is not None else actor - 10
        return actor

    def _my_token(self, actor: int, a: int, stale: bool) -> int:
        t = self.token.get((actor, a), 0)
        return max(0, t - 1) if stale else t

    # --- invariants at every commit -----------------------------------------------------------

    def _at_commit(self, ts: int, docs: int) -> None:
        self.commits += 1
        holds = self.h.rows("lockHolds")
        for art in self.arts:
            mine = sorted((x for x in holds if x["artifactId"] == art), key=lambda x: x["epoch"])
            live = [x for x in mine if "endReason" not in x]
            assert len(live) <= 1, f"two live holds on {art}: {live}"
            assert [x["epoch"] for x in mine] == list(range(1, len(mine) + 1)), "epochs not strictly increasing"
            for older, newer in itertools.pairwise(mine):
                assert "endedAt" in older and older["endedAt"] <= newer["grantedAt"], "overlapping holds"

    # --- rules -------------------------------------------------------------------------------------

    @rule(actor=st.integers(0, 9), a=st.integers(0, N_ART - 1), ttl=st.sampled_from(TTLS),
          keyed=st.booleans())
    def acquire(self, actor: int, a: int, ttl: float, keyed: bool) -> None:
        args: dict[str, Any] = {"artifactId": self.arts[a], "ttlMs": ttl}
        if keyed:
            args["idempotencyKey"] = f"acq-{next(self.keys)}"
        got = self.h.call("locks:acquire", args, ACTORS[actor])
        self._lazy_expire(a)
        if self.holder[a] == actor:
            assert got["status"] == "granted" and got["token"] == self.epoch[a], got
        elif any(w == actor for w, _ in self.queue[a]):
            pos = [w for w, _ in self.queue[a]].index(actor) + 1
            assert got == {**got, "status": "queued", "position": pos, "queueLength": len(self.queue[a])}
        elif self.holder[a] is None:
            self._grant(a, actor, ttl)
            assert got["status"] == "granted" and got["token"] == self.epoch[a], got
            assert got["expiresAt"] == self.expires[a]
        else:
            self.queue[a].append((actor, ttl))
            assert got["status"] == "queued" and got["position"] == len(self.queue[a]), got
            assert got["holder"]["actorId"] == self.actor_ids[self.holder[a]]
        if got["status"] == "granted":
            self.token[(actor, a)] = got["token"]
            if keyed:  # a retry with the same key: same answer, nothing applied twice
                assert self.h.call("locks:acquire", args, ACTORS[actor]) == got

    def _guarded_write(self, path: str, actor: int, a: int, stale: bool, extra: dict[str, Any]) -> Any:
        token = self._my_token(actor, a, stale)
        ok = self._write_ok(actor, a, token)
        late = self.holder[a] == actor and self.epoch[a] == token and not ok
        event(f"{path}: {'accepted' if ok else 'lease ended, not swept' if late else 'rejected'}")
        try:
            got = self.h.call(path, {"artifactId": self.arts[a], "token": token, **extra}, ACTORS[actor])
        except CallError as e:
            assert not ok, f"{path} with the current token was rejected: {e.data}"
            assert e.code in ("STALE_TOKEN", "NOT_HOLDER", "INVALID_TOKEN"), e.data
            if e.code == "STALE_TOKEN":
                assert e.data["reason"] in ("expired", "saved", "released", "forceReleased", "superseded")
            return None
        assert ok, f"{path} accepted a write without the current token/live lease (token {token})"
        return got

    @rule(actor=st.integers(0, 19), a=st.integers(0, N_ART - 1), stale=st.booleans())
    def renew(self, actor: int, a: int, stale: bool) -> None:
        actor = self._who(actor, a)
        got = self._guarded_write("locks:renew", actor, a, stale, {})
        if got is not None:
            self.expires[a] = self.h.now + self.ttl[a]
            assert got == {"token": self.epoch[a], "expiresAt": self.expires[a]}

    @rule(actor=st.integers(0, 19), a=st.integers(0, N_ART - 1), stale=st.booleans())
    def delta(self, actor: int, a: int, stale: bool) -> None:
        actor = self._who(actor, a)
        got = self._guarded_write("drafts:append", actor, a, stale, {"text": "x"})
        if got is not None:
            if self.expires[a] - self.h.now < self.ttl[a] - renew_slack_ms(self.ttl[a]):
                self.expires[a] = self.h.now + self.ttl[a]
            assert got["expiresAt"] == self.expires[a]

    @rule(actor=st.integers(0, 19), a=st.integers(0, N_ART - 1), stale=st.booleans())
    def save(self, actor: int, a: int, stale: bool) -> None:
        actor = self._who(actor, a)
        key = f"save-{next(self.keys)}"
        content = f"by {actor} at {self.h.now}"
        token = self._my_token(actor, a, stale)
        got = self._guarded_write("artifacts:save", actor, a, stale, {"content": content, "idempotencyKey": key})
        if got is not None:
            self.versions[a] += 1
            assert got["version"] == self.versions[a]
            self._end_and_grant_next(a)
            granted = got["grantedTo"]
            assert (granted["actorId"] if granted else None) == (
                self.actor_ids[self.holder[a]] if self.holder[a] is not None else None)
            self.last_save[(actor, a)] = ({"artifactId": self.arts[a], "token": token,
                                           "content": content, "idempotencyKey": key}, got)

    @rule(actor=st.integers(0, 9), a=st.integers(0, N_ART - 1))
    def retry_save(self, actor: int, a: int) -> None:
        if (actor, a) not in self.last_save:
            return
        args, first = self.last_save[(actor, a)]
        assert self.h.call("artifacts:save", args, ACTORS[actor]) == first
        art = self.h.db().get(self.arts[a])
        assert art is not None and art["version"] == self.versions[a], "a retried save applied twice"

    @rule(actor=st.integers(0, 19), a=st.integers(0, N_ART - 1), stale=st.booleans())
    def release(self, actor: int, a: int, stale: bool) -> None:
        actor = self._who(actor, a)
        if self._guarded_write("locks:release", actor, a, stale, {}) is not None:
            self._end_and_grant_next(a)

    @rule(by=st.sampled_from([0, 1, 7]), a=st.integers(0, N_ART - 1))
    def force(self, by: int, a: int) -> None:
        try:
            got = self.h.call("locks:forceRelease", {"artifactId": self.arts[a], "reason": "test"}, ACTORS[by])
        except CallError as e:
            if by != 0:
                assert e.code == "INSUFFICIENT_ROLE"
            else:
                assert e.code == "NOT_LOCKED" and self.holder[a] is None
            return
        assert by == 0 and self.holder[a] is not None
        assert got["previousHolder"]["actorId"] == self.actor_ids[self.holder[a]]
        self._end_and_grant_next(a)

    @rule(ms=st.sampled_from([100.0, 900.0, 4_000.0, 31_000.0]))
    def advance_and_sweep(self, ms: float) -> None:
        self.h.advance(ms)
        for a in range(N_ART):
            self._lazy_expire(a)

    @rule(ms=st.sampled_from([300.0, 900.0, 4_000.0]))
    def advance_sweeper_late(self, ms: float) -> None:
        """Time passes but the sweeper has not run yet: expired leases must still be dead."""
        self.h.now += ms

    @rule(a=st.integers(0, N_ART - 1), offset=st.sampled_from([-1.0, 0.0, 1.0, 400.0]))
    def jump_to_lease_end(self, a: int, offset: float) -> None:
        """Straight to the edge of a lease (just before, at, just after), sweeper not run."""
        if self.holder[a] is not None and self.expires[a] + offset > self.h.now:
            self.h.now = self.expires[a] + offset

    # --- invariants after each step ---------------------------------------------------------------

    @invariant()
    def backend_matches_model(self) -> None:
        db = self.h.db()
        for a, art in enumerate(self.arts):
            lock = db.query("locks").with_index("by_artifact", lambda q, x=art: q.eq("artifactId", x)).unique()
            assert lock is not None and lock["epoch"] == self.epoch[a]
            want = self.actor_ids[self.holder[a]] if self.holder[a] is not None else None
            assert lock.get("holderId") == want
            if want is not None:
                assert lock["expiresAt"] == self.expires[a]
            queue = db.query("lockWaiters").with_index("by_artifact", lambda q, x=art: q.eq("artifactId", x)).collect()
            assert [w["actorId"] for w in queue] == [self.actor_ids[w] for w, _ in self.queue[a]]
        # every version was saved by the holder of the token it carried, and that save ended
        # that hold: no write ever landed without the current token
        holds = {(x["artifactId"], x["epoch"]): x for x in self.h.rows("lockHolds")}
        versions = self.h.rows("versions")
        for a, art in enumerate(self.arts):
            mine = sorted((x for x in versions if x["artifactId"] == art), key=lambda x: x["version"])
            assert [x["version"] for x in mine] == list(range(1, self.versions[a] + 1))
            for ver in mine[1:]:
                hold = holds[(art, ver["lockEpoch"])]
                assert hold["holderId"] == ver["authorId"] and hold["endReason"] == "saved"

    @initialize()
    def start(self) -> None:
        assert self.commits == 0


LockProtocol.TestCase.settings = settings(  # ~15 s on 2 cores
    max_examples=500, stateful_step_count=30, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestLockProtocol = LockProtocol.TestCase
TestLockProtocol.pytestmark = [__import__("pytest").mark.timeout(600)]
