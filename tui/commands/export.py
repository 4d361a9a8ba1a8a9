"""``collab export``: the space's artifacts and its whole discussion as files in a directory."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collab.config import Config


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = sub.add_parser("export", help="write artifacts and discussions to files",
                            description="Write every artifact of the space (and its whole discussion) to a "
                                        "directory. The space must exist: export never creates one.")
    parser.add_argument("out", type=Path, nargs="?", default=Path("collab-export"),
                        help="output directory (default ./collab-export)")
    parser.add_argument("--no-discussion", action="store_true", help="artifacts only")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from collab.tui.bootstrap import BootstrapError, LaunchOptions, load

    options = LaunchOptions(url=getattr(args, "url", None), space=getattr(args, "space", None),
                            config_path=getattr(args, "config", None), data_dir=getattr(args, "data_dir", None))
    try:
        config = load(options, write_default=False)
        written = asyncio.run(_export(config, options.space, args.out, not args.no_discussion))
    except BootstrapError as exc:
        print(f"collab export: {exc}")
        return 1
    for path in written:
        print(path)
    return 0


async def _export(config: Config, space: str | None, out: Path, discussion: bool) -> list[Path]:
    from collab.backend_client.space.exporting import artifact_filename, discussion_markdown
    from collab.tui.bootstrap import connect

    session = await connect(config, space_name=space, create=False)
    written: list[Path] = []
    try:
        out.mkdir(parents=True, exist_ok=True)
        session.usage_snapshot = await session.members.usage_today()  # type: ignore[attr-defined]
        for a in await session.artifacts.summaries():
            full = await session.artifacts.get(str(a["_id"]))
            path = out / artifact_filename(full)
            path.write_text(str(full.get("content") or ""), encoding="utf-8")
            written.append(path)
        written.append(_write_usage(session, out))
        if discussion:
            msgs = await session.discussion.all_messages()
            path = out / f"discussion-{session.space_name}.md"
            path.write_text(discussion_markdown(session.space_name, msgs), encoding="utf-8")
            written.append(path)
    finally:
        await session.client.close()
    return written


def _write_usage(session: "object", out: Path) -> Path:
    """``usage.md``: what the agents cost, per agent and in total, today, since this export
    started (the app's "session" window) and all time, with the space's budget."""
    from collab.backend_client.space.members import money

    summary = session.usage_snapshot  # type: ignore[attr-defined]
    lines = [f"# Agent usage in {session.space_name}", ""]  # type: ignore[attr-defined]
    budget = summary.get("budgetUsd")
    lines.append(f"Budget: {money(budget) if budget is not None else 'none'}")
    lines.append("")
    lines.append("| agent | runs | prompt tokens | completion tokens | cost today | cost all time |")
    lines.append("|---|---:|---:|---:|---:|---:|")
    today = {a["agentId"]: a for a in (summary.get("windows") or [{}])[0].get("agents", [])}
    for a in summary["allTime"]["agents"]:
        t = today.get(a["agentId"], {"costUsd": 0})
        lines.append(f"| @{a['handle']} | {a['runs']:g} | {a['promptTokens']:g} | {a['completionTokens']:g} | "
                     f"{money(t['costUsd'])} | {money(a['costUsd'])} |")
    total = summary["allTime"]["total"]
    today_total = (summary.get("windows") or [{"total": {"costUsd": 0}}])[0]["total"]
    lines.append(f"| **space** | {total['runs']:g} | {total['promptTokens']:g} | {total['completionTokens']:g} | "
                 f"{money(today_total['costUsd'])} | {money(total['costUsd'])} |")
    path = out / "usage.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
