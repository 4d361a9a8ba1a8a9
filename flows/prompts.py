"""What an agent is sent: its persona, the thread, the referenced artifacts (DESIGN 1, 2.5).

Pure functions of rows the worker read from the backend, so they are unit-testable and the
same for every provider. Budgets are in characters (~4 per token) and modest, because the
offline default model has a 2k-token window: the newest messages and the start of each
artifact are kept, and the asking message always is.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["compose_messages", "discussion_messages", "review_messages", "revise_messages", "stage_history",
           "stage_messages", "variation_messages"]

THREAD_BUDGET = 6_000
ARTIFACT_BUDGET = 4_000
MAX_THREAD_MESSAGES = 30


def _system(handle: str, name: str, persona: str, role: str) -> str:
    who = f"You are @{handle} ({name}), the {role} agent of a small team of humans and AI agents."
    return f"{who}\n{persona}".strip()


def _clip(text: str, budget: int) -> str:
    return text if len(text) <= budget else text[:budget] + "\n[... cut ...]"


def artifact_block(artifacts: Sequence[dict[str, Any]]) -> str:
    parts = []
    for a in artifacts:
        parts.append(f"### #{a['slug']}: {a['title']} (version {a['version']}, {a['kind']})\n"
                     f"{_clip(a.get('content', ''), ARTIFACT_BUDGET)}")
    return "Artifacts referenced in the discussion:\n\n" + "\n\n".join(parts)


def discussion_messages(*, handle: str, name: str, persona: str, role: str, thread: Sequence[dict[str, Any]],
                        asking: dict[str, Any], artifacts: Sequence[dict[str, Any]]) -> list[dict[str, str]]:
    """Chat messages for a discussion reply: system (persona, rules, artifacts), then the
    thread as user/assistant turns (the agent's own messages are ``assistant``), ending with
    the message that asked."""
    system = _system(handle, name, persona, role) + (
        "\nReply to the latest message addressed to you, in your own voice, concisely. "
        "Write only your own reply: never lines for other participants.")
    out = [{"role": "system", "content": system}]
    if artifacts:
        out.append({"role": "system", "content": artifact_block(artifacts)})
    turns: list[dict[str, str]] = []
    used = 0
    history = [m for m in thread if m["_id"] != asking["_id"] and m["state"] == "done" and m["body"].strip()]
    for m in reversed(history[-MAX_THREAD_MESSAGES:]):
        own = m["authorKind"] == "agent" and m["authorHandle"] == handle
        content = m["body"] if own else f"@{m['authorHandle']}: {m['body']}"
        if used + len(content) > THREAD_BUDGET:
            break
        used += len(content)
        turns.append({"role": "assistant" if own else "user", "content": content})
    out += reversed(turns)
    out.append({"role": "user", "content": f"@{asking['authorHandle']}: {asking['body']}"})
    return out


def revise_messages(*, handle: str, name: str, persona: str, role: str, artifact: dict[str, Any],
                    request: dict[str, Any] | None, instruction: str | None = None) -> list[dict[str, str]]:
    """Chat messages for a revision: the agent returns the artifact's complete new content."""
    system = _system(handle, name, persona, role) + (
        f"\nYou are revising the artifact #{artifact['slug']}. Output ONLY its complete new content, "
        "ready to save as the next version: no preface, no explanation, no fences around the whole.")
    ask = instruction or (request["body"] if request else "Improve it.")
    who = f"@{request['authorHandle']}" if request else "The team"
    user = (f"Current content of #{artifact['slug']} ({artifact['title']}, version {artifact['version']}):\n\n"
            f"{_clip(artifact['content'], ARTIFACT_BUDGET * 2)}\n\n{who} asks: {ask}")
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


# ---------------------------------------------------------------------------- pipeline stages

NOTES_BUDGET = 4_000
PREVIOUS_BUDGET = 4_000


def _pipeline_intro(pipeline: dict[str, Any], stage_index: int, slug: str) -> str:
    stage = pipeline["stages"][stage_index]
    names = " -> ".join(s["name"] for s in pipeline["stages"])
    text = (f"You are the {stage['name']} stage (stage {stage_index + 1} of {len(pipeline['stages'])}: {names}) "
            f"of the {pipeline['title']} pipeline on the artifact #{slug}.")
    if pipeline.get("instructions"):
        text += f"\n{pipeline['instructions']}"
    return text


def _earlier_notes(pipeline: dict[str, Any], stage_index: int, runs: Sequence[dict[str, Any]]) -> str:
    """The approved notes (critiques) of the stages before this one: what the next stage must
    act on."""
    parts = []
    for r in runs:
        if r["stage"] < stage_index and r["status"] == "approved" and pipeline["stages"][int(r["stage"])]["output"] \
                == "notes":
            parts.append(f"### Notes from the {r['stageName']} stage (@{r.get('actorHandle') or '?'}):\n"
                         f"{_clip(r.get('output') or '', NOTES_BUDGET)}")
    return "\n\n".join(parts)


def stage_history(runs: Sequence[dict[str, Any]], stage_index: int, attempt: int) -> str:
    """Every earlier attempt of this stage with what its reviewer said (every rejection reason
    reaches the next attempt), and the latest earlier output to start from."""
    earlier = [r for r in runs if r["stage"] == stage_index and r["attempt"] < attempt]
    if not earlier:
        return ""
    lines = [f"This is attempt {attempt} of this stage. Earlier attempts:"]
    for r in earlier:
        who = (r.get("reviewer") or {}).get("handle")
        if r["status"] == "rejected":
            lines.append(f"- attempt {r['attempt']:g}: rejected by @{who}. Reason: {r.get('reason', '')}")
        elif r["status"] in ("failed", "cancelled"):
            lines.append(f"- attempt {r['attempt']:g}: {r['status']} ({r.get('error') or 'no reason given'})")
    last = next((r for r in reversed(earlier) if (r.get("output") or "").strip()), None)
    if last is not None:
        lines.append(f"\nYour previous output (attempt {last['attempt']:g}):\n{_clip(last['output'], PREVIOUS_BUDGET)}")
    if any(r["status"] == "rejected" for r in earlier):
        lines.append("\nAddress every reason above in this attempt.")
    return "\n".join(lines)


def stage_messages(*, handle: str, name: str, persona: str, role: str, pipeline: dict[str, Any],
                   runs: Sequence[dict[str, Any]], stage_run: dict[str, Any], artifact: dict[str, Any],
                   input_content: str) -> list[dict[str, str]]:
    """Chat messages for one attempt of a pipeline stage: the stage's instructions, the input
    (the artifact at the attempt's input version), the notes of earlier stages, and for a retry
    every earlier attempt's reason and the previous output. A content stage returns the
    complete new content; a notes stage writes notes for the next stage."""
    index = int(stage_run["stage"])
    stage = pipeline["stages"][index]
    slug = artifact["slug"]
    if stage["output"] == "content":
        task = (f"Output ONLY the complete new content of #{slug}, ready to save as its next version: no preface, "
                "no explanation, no fences around the whole.")
    else:
        task = (f"Write notes for the next stage (for example a critique), most important first. Do not rewrite "
                f"#{slug}: your notes are handed to the next stage.")
    system = f"{_system(handle, name, persona, role)}\n{_pipeline_intro(pipeline, index, slug)}\n{task}"
    parts = [f"Stage instructions: {stage['instructions'] or 'do your part of the work.'}",
             f"Current content of #{slug} ({artifact['title']}, version {stage_run['inputVersion']:g}):\n\n"
             f"{_clip(input_content, ARTIFACT_BUDGET * 2)}"]
    notes = _earlier_notes(pipeline, index, runs)
    if notes:
        parts.append(notes)
    history = stage_history(runs, index, int(stage_run["attempt"]))
    if history:
        parts.append(history)
    return [{"role": "system", "content": system}, {"role": "user", "content": "\n\n".join(parts)}]


def review_messages(*, handle: str, name: str, persona: str, role: str, pipeline: dict[str, Any],
                    runs: Sequence[dict[str, Any]], stage_run: dict[str, Any], artifact: dict[str, Any],
                    input_content: str) -> list[dict[str, str]]:
    """Chat messages for an agent approver: the stage's instructions, its input and output; the
    answer is a structured verdict (``flows.pipeline.parse_verdict``)."""
    index = int(stage_run["stage"])
    stage = pipeline["stages"][index]
    slug = artifact["slug"]
    system = (f"{_system(handle, name, persona, role)}\n{_pipeline_intro(pipeline, index, slug)}\n"
              f"You are not its actor: you review the output of this stage by @{stage_run.get('actorHandle')}. "
              'Answer with one line of JSON and nothing else: {"verdict": "approve" or "reject", "reason": '
              '"one or two sentences"}. Reject only for a concrete problem, and say what to change.')
    output_kind = "new content" if stage["output"] == "content" else "notes"
    parts = [f"Stage instructions: {stage['instructions'] or '(none)'}",
             f"Input: #{slug} version {stage_run['inputVersion']:g}:\n\n{_clip(input_content, ARTIFACT_BUDGET)}",
             f"Output ({output_kind}) of attempt {stage_run['attempt']:g}:\n\n"
             f"{_clip(stage_run.get('output') or '', ARTIFACT_BUDGET)}"]
    history = stage_history(runs, index, int(stage_run["attempt"]))
    if history:
        parts.append(history.split("\nYour previous output")[0])
    return [{"role": "system", "content": system}, {"role": "user", "content": "\n\n".join(parts)}]
def variation_messages(*, handle: str, name: str, persona: str, role: str, artifact: dict[str, Any], base: str,
                       instruction: str, index: int, n: int, flow_instructions: str | None = None,
                       shortlist: Sequence[tuple[int, str]] = (), note: str | None = None) -> list[dict[str, str]]:
    """Chat messages for one variation of a round: the artifact as it was when the round
    started (``base``), the instruction, and for a later round the shortlisted variations and
    the note to go further in their direction. Each variation is written on its own, so it
    asks for a version of its own, not a copy of another."""
    system = _system(handle, name, persona, role) + (
        f"\nYou are writing variation {index} of {n} of the artifact #{artifact['slug']}. Each variation "
        "is a complete alternative version; make yours distinct. Output ONLY the complete new content, "
        "ready to save as the next version: no preface, no explanation, no fences around the whole.")
    if flow_instructions:
        system += f"\n{flow_instructions}"
    parts = [f"Current content of #{artifact['slug']} ({artifact['title']}, version {artifact['version']}):\n\n"
             f"{_clip(base, ARTIFACT_BUDGET * 2)}"]
    if shortlist:
        budget = max(500, ARTIFACT_BUDGET // max(1, len(shortlist)))
        parts.append("The team shortlisted these variations from the previous round; go further in their "
                     "direction:\n\n" + "\n\n".join(f"--- shortlisted #{i} ---\n{_clip(text, budget)}"
                                                     for i, text in shortlist))
    if note:
        parts.append(f"What to change this time: {note}")
    parts.append(f"Instruction: {instruction}")
    return [{"role": "system", "content": system}, {"role": "user", "content": "\n\n".join(parts)}]


def compose_messages(*, handle: str, name: str, persona: str, role: str, artifact: dict[str, Any],
                     parts: Sequence[dict[str, Any]], instruction: str) -> list[dict[str, str]]:
    """Chat messages for a composition: the selected parts of several variations, in order,
    merged into one version following the instruction."""
    system = _system(handle, name, persona, role) + (
        f"\nYou are composing a new version of the artifact #{artifact['slug']} from parts of several "
        "variations. Output ONLY the complete new content: no preface, no explanation, no fences around the whole.")
    budget = max(500, ARTIFACT_BUDGET * 2 // max(1, len(parts)))
    shown = "\n\n".join(f"--- part {k + 1}: variation #{p['index']:g}, lines {p['range']['start'] + 1}-"
                         f"{p['range']['end']} ---\n{_clip(str(p['text']), budget)}" for k, p in enumerate(parts))
    user = f"The parts, in the order to use them:\n\n{shown}\n\nInstruction: {instruction}"
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]
