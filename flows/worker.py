"""The run worker (DESIGN 2.5): one process serves every configured agent, each with its own
identity, up to ``max_runs`` runs at once.

- Each agent's client watches ``runs:pending`` (its queued runs in every space), so a run
  queued by ``messages:post`` wakes the worker at once, without polling. The worker then calls
  ``runs:claim`` for that space: the backend hands each queued run to one claimer only, so
  several workers never run the same run.
- A claimed run has a lease (``lease_ms``), renewed by ``runs:heartbeat`` every third of it.
  A heartbeat answered ``RUN_CANCELLED`` / ``RUN_LOST``, or the run row (watched) turning
  ``cancelled``, sets the run's cancel event: the model stream stops at once (the HTTP stream
  is closed), well within a second of the user's cancel.
- The flow (``discussion`` / ``revise`` / a pipeline's ``stage`` and ``review``) executes; the worker records usage and cost with
  ``runs:complete`` or the error with ``runs:fail``. A worker that dies stops heartbeating:
  the backend's lease expiry fails (or requeues) the run and closes its streams.
- All streams of all agents share one :class:`LivePusher`: one ``streams:push`` per UI tick.
- A model call the provider rate-limits (HTTP 429) before its first token is made again after
  the wait it asks for, a bounded number of times (:class:`RateLimitRetry`), the reply showing
  "waiting for the provider" meanwhile; the claim keeps its heartbeat through the wait.
- The cadences and the UI lane are those of ``[streaming]``, with ``[streaming.convex]``
  applied when the backend is a Convex deployment (:func:`on_convex`).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from collab.backend_client import ConvexClient
from collab.backend_client.api import api
from collab.backend_client.auth import AuthSpec
from collab.config import AgentConfig, Config, StreamingConfig
from collab.flows.cadence import Cadence
from collab.backend_client.space import RUN_OVER, error_code, error_text
from collab.flows.context import Agent, RateLimitRetry, RunContext, RunFailed
from collab.flows.discussion import run_discussion
from collab.flows.edit import run_revise
from collab.flows.live import LivePusher
from collab.flows.llm import warm_up
from collab.flows.pipeline import run_review, run_stage
from collab.flows.variations import run_compose, run_variation

__all__ = ["FLOWS", "Worker"]

log = logging.getLogger(__name__)

Flow = Callable[[RunContext], Awaitable[dict[str, Any]]]
FLOWS: dict[str, Flow] = {"discussion": run_discussion, "reply": run_discussion, "revise": run_revise,
                          "edit": run_revise, "variation": run_variation, "compose": run_compose,
                          "stage": run_stage, "review": run_review}  # a pipeline's stages (flows/pipeline.py)
DEFAULT_LEASE_MS = 15_000
MAX_RUNS = 5
CONVEX_CLOUD_HOSTS = (".convex.cloud",)


def on_convex(url: str, config: Config) -> bool:
    """Is ``url`` a Convex deployment rather than an embedded backend? Yes when the config names
    a deployment (``backend.url``) or the URL is a Convex Cloud one (``collab worker --url``)."""
    from urllib.parse import urlparse

    host = (urlparse(url).hostname or "").lower()
    return not config.backend.embedded or host.endswith(CONVEX_CLOUD_HOSTS)


class Worker:
    """Serve the runs of ``agents`` (default: the config's enabled agents) on ``url``.

    ``auth_for(handle)`` gives the credentials of agent ``handle`` (a token, a token fetcher or
    an ``AdminKey`` acting as ``agent:<handle>``)."""

    def __init__(self, url: str, config: Config, auth_for: Callable[[str], AuthSpec], *,
                 agents: Sequence[AgentConfig] | None = None, max_runs: int = MAX_RUNS,
                 lease_ms: float = DEFAULT_LEASE_MS, env: Mapping[str, str] | None = None,
                 warm: bool = True, freeze_gc: bool = True, convex: bool | None = None,
                 rate_limit: RateLimitRetry | None = None) -> None:
        self.url = url
        self.config = config
        self.auth_for = auth_for
        self.agent_configs = list(agents if agents is not None else config.enabled_agents())
        # the cadences and the UI lane in force for this backend ([streaming.convex] on Convex)
        self.streaming: StreamingConfig = config.streaming.for_backend(
            embedded=not (on_convex(url, config) if convex is None else convex))
        self.cadence = Cadence.from_config(self.streaming)
        self.max_runs = max_runs
        self.lease_ms = lease_ms
        self.env = env
        self.warm = warm
        self.freeze_gc = freeze_gc
        self.rate_limit = rate_limit or RateLimitRetry()
        self.agents: dict[str, Agent] = {}
        self.pusher: LivePusher | None = None
        self.active: dict[str, RunContext] = {}
        self.finished: list[tuple[str, str]] = []  # (runId, outcome) for tests and logs
        self._slots = asyncio.Semaphore(max_runs)
        self._kick: dict[str, asyncio.Event] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._stopping = False

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> Worker:
        if not self.agent_configs:
            raise ValueError("no agents to serve: enable at least one in the config")
        for cfg in self.agent_configs:
            client = ConvexClient(self.url, auth=self.auth_for(cfg.handle))
            await client.connect(timeout=30)
            me = await client.mutation(api.actors.ensure, {"name": cfg.name})
            self.agents[cfg.handle] = Agent(config=cfg, model=self.config.model_for(cfg), client=client,
                                            actor_id=str(me["_id"]))
        # one connection pushes the live tails of every agent's streams (the key authorizes);
        # it exists before any run can be claimed
        first = next(iter(self.agents.values()))
        self.pusher = LivePusher(first.client, self.cadence.ui_interval_ms, enabled=self.streaming.ui_lane).start()
        for agent in self.agents.values():
            kick = self._kick[agent.handle] = asyncio.Event()
            pending = agent.client.watch(api.runs.pending, {})
            pending.subscribe(lambda _v, k=kick: k.set())
            kick.set()
            self._spawn(self._claim_loop(agent, pending, kick), f"claim-{agent.handle}")
        if self.warm:  # the litellm import and local weights, off the loop, before the first run
            models = sorted({a.model.model for a in self.agents.values()})
            self._spawn(self._warm(models), "warm-up")
        return self

    async def _warm(self, models: list[str]) -> None:
        try:
            await warm_up(models)
        except Exception:  # a broken model shows up as that agent's run error, not here
            log.warning("warm-up failed", exc_info=True)
        if self.freeze_gc:
            # litellm's import leaves ~10^5 long-lived objects; streaming allocates fast, so
            # full collections come every few seconds and each walked them all (~150 ms stalls
            # of every stream, seen in bench/agents_stream.py). Frozen, they are never walked.
            gc.collect()
            gc.freeze()

    async def stop(self, grace_s: float = 5.0) -> None:
        """Cancel running runs (their replies are finished as failed), then disconnect."""
        self._stopping = True
        for ctx in list(self.active.values()):
            ctx.stop_reason = "the worker is shutting down"
            ctx.cancel.set()
        runs = [t for t in self._tasks if t.get_name().startswith("run-")]
        if runs:
            await asyncio.wait(runs, timeout=grace_s)
        for t in list(self._tasks):
            t.cancel()
        for t in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        if self.pusher is not None:
            await self.pusher.stop()
        for agent in self.agents.values():
            await agent.client.close()

    async def __aenter__(self) -> Worker:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def run_forever(self, stop: asyncio.Event) -> None:
        await self.start()
        try:
            await stop.wait()
        finally:
            await self.stop()

    def _spawn(self, coro: Awaitable[Any], name: str) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("worker task %s failed", task.get_name(), exc_info=task.exception())

    # ------------------------------------------------------------------ claiming

    async def _claim_loop(self, agent: Agent, pending: Any, kick: asyncio.Event) -> None:
        while not self._stopping:
            await kick.wait()
            kick.clear()
            spaces = list(dict.fromkeys(r["spaceId"] for r in (pending.value or [])))
            for space_id in spaces:
                while not self._stopping:
                    await self._slots.acquire()
                    try:
                        run = await agent.client.mutation(api.runs.claim, {"spaceId": space_id,
                                                                          "leaseMs": self.lease_ms})
                    except Exception:
                        self._slots.release()
                        log.warning("claim failed for @%s", agent.handle, exc_info=True)
                        await asyncio.sleep(1.0)
                        kick.set()
                        break
                    if run is None:
                        self._slots.release()
                        break
                    self._spawn(self._execute(agent, run), f"run-{run['_id']}")

    # ------------------------------------------------------------------ one run

    async def _execute(self, agent: Agent, run: dict[str, Any]) -> None:
        assert self.pusher is not None
        ctx = RunContext(run=run, agent=agent, pusher=self.pusher, cadence=self.cadence, locks=self.config.locks,
                         env=self.env, retry=self.rate_limit)
        self.active[ctx.run_id] = ctx
        row = agent.client.watch(api.runs.get, {"runId": ctx.run_id})

        def on_row(value: Any) -> None:
            if isinstance(value, dict) and value.get("status") == "cancelled" and not ctx.cancel.is_set():
                ctx.stop_reason = str(value.get("error") or "cancelled")
                ctx.cancel.set()

        row.subscribe(on_row)
        beat = asyncio.ensure_future(self._heartbeat(ctx))
        outcome = "done"
        try:
            flow = FLOWS.get(str(run["kind"]))
            if flow is None:
                raise RunFailed(f"@{agent.handle} does not know how to run a {run['kind']!r} job")
            output = await flow(ctx)
            if ctx.cancel.is_set() and ctx.stop_reason is not None:
                outcome = "cancelled"
                if self._stopping:  # our own shutdown: give the run back (or fail it) now
                    await self._fail(ctx, ctx.stop_reason, retry=True)
            else:
                await agent.client.mutation(api.runs.complete, {"runId": ctx.run_id, "attempt": run["attempt"],
                                                                "output": output, **ctx.usage_fields()})
        except RunFailed as exc:
            outcome = "failed"
            await self._fail(ctx, str(exc), retry=False)
        except asyncio.CancelledError:
            outcome = "stopped"
            raise
        except Exception as exc:
            outcome = "failed"
            log.exception("run %s of @%s crashed", ctx.run_id, agent.handle)
            if error_code(exc) not in RUN_OVER:
                await self._fail(ctx, f"@{agent.handle} hit an internal error: {error_text(exc)}", retry=False)
        finally:
            beat.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await beat
            row.close()
            self.active.pop(ctx.run_id, None)
            self.finished.append((ctx.run_id, outcome))
            self._slots.release()
            self._kick[agent.handle].set()  # more queued runs may be waiting for a slot

    async def _fail(self, ctx: RunContext, error: str, *, retry: bool) -> None:
        try:
            await ctx.client.mutation(api.runs.fail, {"runId": ctx.run_id, "attempt": ctx.run["attempt"],
                                                      "error": error[:2000], "retry": retry, **ctx.usage_fields()})
        except Exception as exc:
            if error_code(exc) not in RUN_OVER:
                log.warning("runs:fail failed for %s", ctx.run_id, exc_info=True)

    async def _heartbeat(self, ctx: RunContext) -> None:
        """Renew the claim every third of the lease; the backend's answer may say stop."""
        first = True
        while True:
            try:
                await ctx.client.mutation(api.runs.heartbeat, {"runId": ctx.run_id, "attempt": ctx.run["attempt"],
                                                               "streaming": first, "leaseMs": self.lease_ms})
                first = False
            except Exception as exc:
                code = error_code(exc)
                if code in ("RUN_CANCELLED", "RUN_LOST"):
                    ctx.stop_reason = "cancelled" if code == "RUN_CANCELLED" else "the run's claim was lost"
                    ctx.cancel.set()
                    return
                log.warning("heartbeat failed for %s", ctx.run_id, exc_info=True)
            await asyncio.sleep(self.lease_ms / 3000)
