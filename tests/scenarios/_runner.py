"""Runs one scenario (tests/scenarios/README.md) against a backend driver, through
``collab.backend_client``. The drivers: the in-process embedded backend (test_embedded.py) and
a Convex deployment (test_deployment.py)."""

from __future__ import annotations

from typing import Any, Protocol

from collab.backend.functions import App
from collab.backend_client import ConvexClient, ConvexError, FunctionError

from tests.scenarios._lang import Failure, Mismatch, State

_APP: App | None = None


def registry() -> App:
    """Which functions are queries: the Python registry (the parity test keeps the TypeScript
    one identical)."""
    global _APP
    if _APP is None:
        _APP = App.from_package("collab.backend.model")
    return _APP


class Driver(Protocol):
    async def client(self, who: str | None) -> ConvexClient: ...

    async def advance(self, ms: float) -> None: ...


async def call(client: ConvexClient, path: str, args: dict[str, Any]) -> Any:
    fn = registry().functions.get(path)
    if fn is None or fn.visibility != "public":
        raise ValueError(f"scenario calls {path}, which is not a public function")
    if fn.kind == "query":
        return await client.query(path, args)
    return await client.mutation(path, args)


async def run(scenario: dict[str, Any], driver: Driver, state: State) -> None:
    for i, step in enumerate(scenario["steps"]):
        where = f"step {i}" + (f" ({step['note']})" if "note" in step else "")
        if "advanceMs" in step:
            state.now += float(step["advanceMs"])
            await driver.advance(float(step["advanceMs"]))
            continue
        if "call" not in step:
            raise ValueError(f"{where}: a step needs `call` or `advanceMs`")
        where += f" {step['call']} as {step.get('as')}"
        args = state.resolve(step.get("args", {}))
        client = await driver.client(step.get("as"))
        try:
            value = await call(client, step["call"], args)
        except ConvexError as exc:
            failure = Failure(exc.message, exc.data, is_convex_error=True)
        except FunctionError as exc:
            failure = Failure(exc.message)
        else:
            if "expect" in step:
                state.match(step["expect"], value, where)
            if "save" in step:
                state.saved[str(step["save"])] = value
            continue
        if "expect" not in step:
            raise Mismatch(f"{where}: the call failed: {failure.message} {failure.data!r}")
        state.match_failure(step["expect"], failure, where)
