"""The offline default runs the ``writing`` preset end to end: with no provider key and the
default config, dara drafts, edwin edits and polly polishes on the local llama.cpp model, a
human approving each stage; each approval is a version of the artifact."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from collab.backend_client.api import api
from collab.backend_client.space.pipeline import start_args
from collab.config import load_config_text
from collab.flows.local_model import binding_available

from tests.flows._world import worker, world
from tests.live import until

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(600),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:.*is using the `ReadOnly` qualifier:UserWarning"),
    pytest.mark.skipif(not binding_available(), reason="xllamacpp is not importable"),
]


async def test_the_writing_preset_with_the_local_model(tmp_path: Path) -> None:
    config = load_config_text("")  # the defaults: no keys anywhere
    handles = ["dara", "edwin", "polly"]
    assert all(config.model_for(h).model == "local/smollm2" for h in handles)
    async with world(tmp_path, handles, content="Notes: a short welcome text for new team members.\n") as w, \
            worker(w, config, handles):
        pid = (await w.human.mutation(api.pipelines.start, start_args(config, "writing", w.artifact)))["pipelineId"]
        live = w.human.watch(api.pipelines.get, {"pipelineId": pid})
        try:
            for stage in range(3):
                def awaiting(stage: int = stage) -> dict[str, Any] | None:
                    got = live.value
                    assert not got or got["pipeline"]["status"] != "failed", got["pipeline"].get("reason")
                    run = got["runs"][-1] if got else None
                    return run if run and run["stage"] == stage and run["status"] == "awaitingReview" else None

                run = await until(awaiting, live, timeout=240, what=f"stage {stage} to await review")
                assert len(run["output"].split()) >= 5, run["output"]
                await w.human.mutation(api.pipelines.approve, {"pipelineId": pid, "stageRunId": run["_id"]})
            done = await until(lambda: live.value if live.value["pipeline"]["status"] == "done" else None, live,
                               what="the pipeline to be done")
        finally:
            live.close()
        history = await w.human.query(api.artifacts.history, {"artifactId": w.artifact})
    assert [r["outputVersion"] for r in done["runs"]] == [2, 3, 4]
    assert [(v["version"], v["source"], v["provenance"]["actor"]) for v in history[:3]] == [
        (4, "agent", "polly"), (3, "agent", "edwin"), (2, "agent", "dara")]
