"""One contending client process: N acquire/save cycles on one artifact over the real
protocol (WebSocket ConvexClient). Waits in the FIFO queue by watching ``locks:queue``.
Prints a JSON summary on stdout."""

from __future__ import annotations

import asyncio
import json
import sys
import time

from collab.backend_client.client import ConvexClient


async def run(url: str, token: str, artifact_id: str, cycles: int, handle: str) -> dict[str, object]:
    async with ConvexClient(url, auth=token) as client:
        me = await client.mutation("actors:ensure", {})
        queue = client.watch("locks:queue", {"artifactId": artifact_id})
        saved, queued = [], 0
        t0 = time.monotonic()
        for i in range(cycles):
            args = {"artifactId": artifact_id, "ttlMs": 60_000, "idempotencyKey": f"acq-{handle}-{i}"}
            got = await client.mutation("locks:acquire", args)
            if got["status"] == "queued":
                queued += 1
                async for state in queue.updates():
                    if state["holder"] and state["holder"]["actorId"] == me["_id"]:
                        break
                got = await client.mutation("locks:acquire", args)  # same key: now granted
            assert got["status"] == "granted", got
            res = await client.mutation("artifacts:save", {
                "artifactId": artifact_id, "token": got["token"], "content": f"{handle} {i}",
                "idempotencyKey": f"save-{handle}-{i}"})
            saved.append([got["token"], res["version"]])
        return {"handle": handle, "saved": saved, "queued": queued, "seconds": time.monotonic() - t0}


if __name__ == "__main__":
    url, token, artifact_id, cycles, handle = sys.argv[1:6]
    print(json.dumps(asyncio.run(run(url, token, artifact_id, int(cycles), handle))))
