"""A long draft streaming into the document view renders only its growing end."""

from __future__ import annotations

from collab.widgets.document_view import DRAFT_TAIL_CHARS, draft_tail


def test_short_drafts_show_whole() -> None:
    assert draft_tail("line one\nline two").plain == "line one\nline two"


def test_long_drafts_show_the_end_from_a_line_start() -> None:
    lines = [f"line {i:05d} " + "x" * 40 for i in range(2000)]
    draft = "\n".join(lines)
    shown = draft_tail(draft).plain
    head, _, body = shown.partition("\n")
    assert head.startswith("… ") and head.endswith(" earlier characters")
    assert body.startswith("line ") and draft.endswith(body)  # whole lines, the very end
    assert len(body) <= DRAFT_TAIL_CHARS
    assert int(head[2:].split()[0].replace(",", "")) == len(draft) - len(body)


def test_a_draft_without_line_breaks_is_cut_at_the_limit() -> None:
    draft = "y" * (DRAFT_TAIL_CHARS * 3)
    shown = draft_tail(draft).plain
    assert shown.endswith("y" * DRAFT_TAIL_CHARS) and shown.count("y") == DRAFT_TAIL_CHARS
