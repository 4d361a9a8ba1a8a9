"""collab.backend_client.space: the app's client-side knowledge, one facade per view, used by
the panes (``screens/``, ``widgets/``) and by the agents (``flows/``) alike. No Textual.

- ``session``: :class:`SpaceSession` (who, where, connection, presence) and ``open_session``;
- ``artifacts`` / ``discussion`` / ``variations`` / ``pipeline``: the facades of those views;
- ``locks``: :class:`LockHold`, the fenced, leased hold of an artifact's lock;
- ``errors``: error codes and their sentences; ``streams``: live tails joined with durable
  text; ``diff``: line diffs; ``presence``: the heartbeat job.
"""

from collab.backend_client.space.artifacts import ArtifactsView, kind_for_title
from collab.backend_client.space.diff import DiffLine, diff_lines, side_by_side
from collab.backend_client.space.discussion import DiscussionView, MessagePage, Sent, split_command
from collab.backend_client.space.errors import FENCE_LOST, RUN_OVER, LockConflict, Queued, error_code, error_text
from collab.backend_client.space.locks import LeasePolicy, LockHold
from collab.backend_client.space.pipeline import PipelineView, StageView, pipeline_flows, stage_output, track, track_line
from collab.backend_client.space.members import VIEWER_REFUSAL, MembersView
from collab.backend_client.space.session import Clock, NoSuchSpace, Reviver, SpaceSession, open_session
from collab.backend_client.space.streams import draft_row_matches, merge, rows_by_message
from collab.backend_client.space.variations import Part, RoundPlan, VariationsView, parse_vary

__all__ = [
    "FENCE_LOST",
    "RUN_OVER",
    "VIEWER_REFUSAL",
    "ArtifactsView",
    "Clock",
    "DiffLine",
    "DiscussionView",
    "LeasePolicy",
    "LockConflict",
    "LockHold",
    "PipelineView",
    "MembersView",
    "MessagePage",
    "NoSuchSpace",
    "Queued",
    "Part",
    "Reviver",
    "RoundPlan",
    "Sent",
    "SpaceSession",
    "StageView",
    "VariationsView",
    "diff_lines",
    "draft_row_matches",
    "error_code",
    "error_text",
    "kind_for_title",
    "merge",
    "open_session",
    "pipeline_flows",
    "parse_vary",
    "rows_by_message",
    "side_by_side",
    "split_command",
    "stage_output",
    "track",
    "track_line",
]
