"""The offline model's speed, through the path the agents use (litellm -> the ``local`` provider
-> llama.cpp): load time; time to first token and tokens/s for a short question and for a
discussion-sized prompt built by ``flows.prompts`` (~450 tokens, a new prefix each run, so
nothing comes from llama.cpp's prompt cache); and how long a run cancelled while its prompt is
being read keeps the model busy (from the cancel until the model is free). Medians over
``--runs``. ``--samples`` also prints the replies to a fixed set of flow prompts (a discussion
reply, a revision, three variations) with their speed, for comparing weights.

    python bench/local_model.py [--model local/smollm2 | --gguf PATH] [--runs 3] [--samples]

It measures the binding of the collab install whose python runs it. To measure another one,
run this file with that install's python: for the previous binding (llama-cpp-python), an
older checkout's venv, e.g. ``/tmp/before/.venv/bin/python bench/local_model.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import statistics
import time
from typing import Any

from _common import ROOT  # noqa: F401  (puts the repo on sys.path)

from collab.flows import local_model
from collab.flows import llm
from collab.flows.llm import stream_completion
from collab.flows.prompts import discussion_messages, revise_messages

PLAN = """# Release plan: offline mode

Goal: ship offline mode on Friday. Agents answer with the local model when no API key is set.

## Scope
- The local model loads at worker start; the first reply must not wait for it.
- Replies stream token by token; a cancel stops the model within a second.
- Installs from wheels only: no compiler on the user's machine.

## Risks
- The small model can be confidently wrong about facts.
- Five agents asked at once queue for one model: the last reply starts late.
- Tests: unit tests for the provider, one end-to-end discussion; no load test yet.

## Schedule
Monday: provider and tests. Tuesday: install scripts. Wednesday: docs and benchmark.
Thursday: freeze, fix what the team finds. Friday: release notes and ship.
"""

THREAD = [
    ("human", "maya", "I want to ship offline mode on Friday. Is #plan realistic?"),
    ("agent", "rhea", "The plan covers install and streaming. It does not say how the model's "
                      "answers are checked, and the load test is missing."),
    ("human", "tom", "Load test can wait. What worries me is the queue when five agents reply."),
    ("agent", "edwin", "The Risks section should rank the risks, not list them."),
]


def _artifact() -> dict[str, Any]:
    return {"slug": "plan", "title": "Release plan", "version": 3, "kind": "doc", "content": PLAN}


def _thread() -> list[dict[str, Any]]:
    return [{"_id": str(i), "authorKind": kind, "authorHandle": who, "body": body, "state": "done"}
            for i, (kind, who, body) in enumerate(THREAD)]


def discussion(tag: str = "") -> list[dict[str, str]]:
    """Quinn (reviewer) is asked about #plan; ``tag`` opens the prompt (no shared prefix)."""
    asking = {"_id": "ask", "authorHandle": "maya", "body": "@quinn what is the biggest risk in #plan?"}
    messages = discussion_messages(
        handle="quinn", name="Quinn", role="reviewer",
        persona="You are Quinn, a skeptical reviewer. You look for weak claims, gaps and risks.",
        thread=_thread(), asking=asking, artifacts=[_artifact()])
    if tag:
        messages[0] = {"role": "system", "content": f"[{tag}] {messages[0]['content']}"}
    return messages


def revision(handle: str, name: str, role: str, ask: str) -> list[dict[str, str]]:
    request = {"authorHandle": "maya", "body": ask}
    return revise_messages(handle=handle, name=name, role=role, persona="",
                           artifact=_artifact(), request=request)


async def one(model: str, messages: list[dict[str, str]], **kwargs: Any) -> dict[str, Any]:
    """Streams one reply: time to first token, tokens/s after it, the text and usage."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    first = end = 0.0
    parts: list[str] = []
    usage: Any = None
    finish = ""
    async for chunk in stream_completion(model, messages, **kwargs):
        if chunk.text:
            first = first or loop.time()
            parts.append(chunk.text)
        elif chunk.done:
            end, usage, finish = loop.time(), chunk.usage, chunk.finish_reason or ""
    rate = (len(parts) - 1) / (end - first) if len(parts) > 1 and end > first else 0.0
    return {"ttft": (first or end) - started, "tps": rate, "tokens": len(parts),
            "prompt_tokens": usage.prompt_tokens if usage else 0, "text": "".join(parts),
            "finish": finish}


def binding() -> str:
    name = getattr(local_model, "BINDING", "llama-cpp-python")  # the old module had no BINDING
    try:
        return f"{name} {importlib.metadata.version(name)}"
    except importlib.metadata.PackageNotFoundError:
        return name


def median(rows: list[dict[str, Any]], key: str) -> float:
    return statistics.median(r[key] for r in rows)


async def speed(model: str, runs: int, max_tokens: int) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    await asyncio.to_thread(local_model.preload, model)
    print(f"binding {binding()}, model {model} ({local_model.find_weights(model).name})")
    print(f"load                {loop.time() - started:6.2f} s")
    # litellm's import and first call are paid once per process, before any agent's run
    # (flows.llm.warm_up): not the model's cost, so not measured.
    await llm.warm_up()
    await one(model, [{"role": "user", "content": "Hello."}], max_tokens=4)

    short: list[dict[str, Any]] = []
    for i in range(runs):
        question = [{"role": "user", "content": f"In two sentences (take {i}), why do tests matter?"}]
        short.append(await one(model, question, max_tokens=max_tokens, temperature=0.7,
                               extra={"seed": i}))
    print(f"short question      first token {median(short, 'ttft'):5.2f} s   "
          f"{median(short, 'tps'):5.1f} tokens/s   ({median(short, 'tokens'):.0f} tokens, "
          f"{short[0]['prompt_tokens']} prompt tokens)")

    long: list[dict[str, Any]] = []
    for i in range(runs):
        long.append(await one(model, discussion(f"run {i} {time.time_ns()}"),
                              max_tokens=max_tokens, temperature=0.3, extra={"seed": i}))
    prompt = long[0]["prompt_tokens"]
    print(f"discussion prompt   first token {median(long, 'ttft'):5.2f} s   "
          f"{median(long, 'tps'):5.1f} tokens/s   ({prompt} prompt tokens: "
          f"{prompt / median(long, 'ttft'):.0f} prompt tokens/s)")

    # Cancel while the prompt is being read; then wait until the model is free again.
    held: list[float] = []
    for i in range(runs):
        cancel = asyncio.Event()
        task = asyncio.create_task(one(model, discussion(f"cancel {i} {time.time_ns()}"),
                                       max_tokens=max_tokens, cancel=cancel))
        while not model_busy():
            await asyncio.sleep(0.005)
        await asyncio.sleep(0.3)  # into the prompt
        cancelled_at = loop.time()
        cancel.set()
        await task
        while model_busy():
            await asyncio.sleep(0.005)
        held.append(loop.time() - cancelled_at)
    print(f"cancel mid-prompt   model busy {statistics.median(held):5.2f} s after the cancel "
          f"(max {max(held):.2f} s)")


def model_busy() -> bool:
    engine = getattr(local_model, "engine", None)
    if engine is not None:
        return bool(engine.busy)
    return bool(local_model._engine._lock.locked())  # the previous engine: its lock tells


async def samples(model: str, max_tokens: int) -> None:
    cases = [
        ("discussion reply (@quinn, 0.3)", discussion(), 0.3),
        ("revision (@edwin, 0.5)", revision("edwin", "Edwin", "editor",
                                            "Rank the risks by severity and keep the rest."), 0.5),
    ] + [(f"variation {n} (@dara, {t})", revision("dara", "Dara", "drafter",
                                                   "Rewrite it as a short announcement."), t)
         for n, t in ((1, 0.5), (2, 0.8), (3, 1.0))]
    for title, messages, temperature in cases:
        row = await one(model, messages, max_tokens=max_tokens, temperature=temperature,
                        extra={"seed": 7})
        print(f"\n--- {title}: {row['prompt_tokens']} prompt tokens, first token "
              f"{row['ttft']:.2f} s, {row['tokens']} tokens at {row['tps']:.1f}/s, "
              f"finish {row['finish']}\n{row['text'].strip()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=local_model.DEFAULT_LOCAL_MODEL)
    parser.add_argument("--gguf", help="measure this GGUF file (registered as local/bench)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--samples", action="store_true",
                        help="also print replies to the fixed flow prompts")
    args = parser.parse_args()
    model = local_model.register_local_model("bench", args.gguf) if args.gguf else args.model

    async def run() -> None:
        await speed(model, args.runs, args.max_tokens)
        if args.samples:
            await samples(model, 256)

    asyncio.run(run())


if __name__ == "__main__":
    main()
