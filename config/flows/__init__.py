"""Flows: named compositions of agents, a view, stages and variation counts.

The presets ship as TOML files in this folder, one flow per file (the file name is the flow
name); ``[flows.<name>]`` tables in the user's config add flows or change presets.
"""

from .model import ACTOR_HUMAN, APPROVER_AUTO, FlowConfig, FlowView, StageConfig
from .presets import load_presets, preset_files

__all__ = [
    "ACTOR_HUMAN",
    "APPROVER_AUTO",
    "FlowConfig",
    "FlowView",
    "StageConfig",
    "load_presets",
    "preset_files",
]
