"""collab.config: the configuration every layer reads.

    from collab.config import load_config, ConfigError
    config = load_config(overrides={"backend.url": args.url})   # raises ConfigError

Pure data and validation: no Textual, no other collab package (tests/test_layers.py).
"""

from .agents import AgentConfig, default_agents
from .backend import BackendConfig
from .budget import BudgetConfig
from .errors import ConfigError, ConfigIssue
from .flows.model import FlowConfig, StageConfig
from .identity import IdentityConfig
from .keymap import BINDINGS, BINDINGS_BY_ID, DEFAULT_KEYMAP, BindingSpec, textual_keymap
from .llm import LOCAL_MODEL, LOCAL_PROVIDER, ModelsConfig, ModelSpec
from .load import default_config, load_config, load_config_text
from .locks import LocksConfig
from .models import Config
from .paths import Paths, locate, resolve_paths
from .streaming import StreamingConfig, StreamingProfile
from .theme import ThemeConfig
from .ui import UIConfig
from .write import default_config_text, write_default_config

__all__ = [
    "AgentConfig",
    "BINDINGS",
    "BINDINGS_BY_ID",
    "BackendConfig",
    "BudgetConfig",
    "BindingSpec",
    "Config",
    "ConfigError",
    "ConfigIssue",
    "DEFAULT_KEYMAP",
    "FlowConfig",
    "IdentityConfig",
    "LOCAL_MODEL",
    "LOCAL_PROVIDER",
    "LocksConfig",
    "ModelSpec",
    "ModelsConfig",
    "Paths",
    "StageConfig",
    "StreamingConfig",
    "StreamingProfile",
    "ThemeConfig",
    "UIConfig",
    "default_agents",
    "default_config",
    "default_config_text",
    "load_config",
    "load_config_text",
    "locate",
    "resolve_paths",
    "textual_keymap",
    "write_default_config",
]
