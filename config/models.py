"""The whole config: one model with a field per TOML section, and the checks across sections."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, PrivateAttr, field_validator, model_validator

from .agents import MAX_ENABLED_AGENTS, AgentConfig, default_agents
from .backend import BackendConfig
from .budget import BudgetConfig
from .base import Section, check
from .errors import Key
from .flows.model import FlowConfig, is_agent_actor
from .identity import IdentityConfig
from .keymap import DEFAULT_KEYMAP, flatten_keymap
from .llm import ModelsConfig, ModelSpec
from .locks import LocksConfig
from .streaming import StreamingConfig
from .theme import ThemeConfig
from .ui import UIConfig

SECTIONS = (
    "backend",
    "identity",
    "models",
    "agents",
    "flows",
    "streaming",
    "locks",
    "budget",
    "keymap",
    "theme",
    "ui",
)


class Config(Section):
    """Everything collab reads from ``config.toml``. Get one with ``load_config()``."""

    backend: BackendConfig = Field(default_factory=BackendConfig)
    identity: IdentityConfig = Field(default_factory=IdentityConfig)
    models: ModelsConfig = Field(default_factory=ModelsConfig)
    agents: list[AgentConfig] = Field(default_factory=default_agents)
    flows: dict[str, FlowConfig] = Field(default_factory=dict)
    streaming: StreamingConfig = Field(default_factory=StreamingConfig)
    locks: LocksConfig = Field(default_factory=LocksConfig)
    budget: BudgetConfig = Field(default_factory=BudgetConfig)
    keymap: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_KEYMAP))
    theme: ThemeConfig = Field(default_factory=ThemeConfig)
    ui: UIConfig = Field(default_factory=UIConfig)

    # The file this config was read from (None: defaults only). Not part of the data.
    _source_path: Path | None = PrivateAttr(default=None)

    @property
    def source_path(self) -> Path | None:
        return self._source_path

    @field_validator("keymap", mode="before")
    @classmethod
    def _flatten_keymap(cls, value: Any) -> Any:
        # Unquoted dotted ids (artifact.edit = "e") arrive from TOML as nested tables, and
        # several keys may be an array: store Textual's comma-separated form.
        if not isinstance(value, dict):
            return value
        flat = flatten_keymap(value)
        return {
            k: ",".join(v) if isinstance(v, list) and all(isinstance(x, str) for x in v) else v
            for k, v in flat.items()
        }

    @field_validator("flows")
    @classmethod
    def _flow_names(cls, value: dict[str, FlowConfig]) -> dict[str, FlowConfig]:
        for name in value:
            if not name.replace("_", "").replace("-", "").isalnum() or not name[:1].isalpha():
                raise ValueError(f"flow name {name!r} must be letters, digits, - or _")
        return value

    @model_validator(mode="after")
    def _across_sections(self) -> "Config":
        # Keymap rules depend on ui.allow_multiplexer_keys, so they are checked here.
        from .keymap import validate_keymap

        problems: list[tuple[Key, str]] = []
        keymap, km_problems = validate_keymap(
            self.keymap, allow_multiplexer_keys=self.ui.allow_multiplexer_keys
        )
        problems += [(("keymap",) + k, m) for k, m in km_problems]
        if not km_problems:
            # Stored canonical and complete: every id present, keys in Textual's spelling.
            object.__setattr__(self, "keymap", keymap)

        handles: dict[str, int] = {}
        for i, a in enumerate(self.agents):
            if a.handle in handles:
                msg = f"{a.handle!r} is already agents[{handles[a.handle]}]"
                problems.append((("agents", i, "handle"), msg))
            handles.setdefault(a.handle, i)
            if a.model is not None and not self.models.knows(a.model):
                problems.append((("agents", i, "model"), self._unknown_model(a.model)))
        enabled = [a.handle for a in self.agents if a.enabled]
        if len(enabled) > MAX_ENABLED_AGENTS:
            problems.append(
                (
                    ("agents",),
                    f"at most {MAX_ENABLED_AGENTS} agents can be enabled (got {len(enabled)}: "
                    f"{', '.join(enabled)}); set enabled = false on some",
                )
            )
        if not self.models.knows(self.models.default):
            problems.append((("models", "default"), self._unknown_model(self.models.default)))
        if self.identity.handle in handles:
            problems.append(
                (
                    ("identity", "handle"),
                    f"{self.identity.handle!r} is an agent's handle; choose another one",
                )
            )

        for name, flow in self.flows.items():
            for i, h in enumerate(flow.agents):
                if h not in handles:
                    problems.append((("flows", name, "agents", i), self._unknown_agent(h, handles)))
            for i, stage in enumerate(flow.stages):
                for key in ("actor", "approver"):
                    who = getattr(stage, key)
                    if is_agent_actor(who) and who not in handles:
                        problems.append(
                            (("flows", name, "stages", i, key), self._unknown_agent(who, handles))
                        )
        check(problems)
        return self

    def _unknown_model(self, name: str) -> str:
        known = ", ".join(sorted(self.models.aliases))
        return f"unknown model alias {name!r} (aliases: {known}; or write provider/model)"

    @staticmethod
    def _unknown_agent(handle: str, handles: dict[str, int]) -> str:
        from .keymap import suggest

        hint = suggest(handle, list(handles)) or f" (agents: {', '.join(handles)})"
        return f"no agent with handle {handle!r}{hint}"

    # -- lookups used by the app and the flows ----------------------------------------------
    @property
    def data_dir(self) -> Path:
        """The embedded backend's data dir (``load_config`` always fills it in)."""
        if self.backend.data_dir is None:
            from .paths import data_dir

            return data_dir()
        return self.backend.data_dir

    def budget_for(self, space: str) -> float | None:
        """The space's budget in USD (None: no limit), recorded on it when its owner opens it."""
        return self.budget.for_space(space)

    def agent(self, handle: str) -> AgentConfig:
        for a in self.agents:
            if a.handle == handle:
                return a
        raise KeyError(f"no agent with handle {handle!r}")

    def enabled_agents(self) -> list[AgentConfig]:
        """The agents that join new spaces (at most five)."""
        return [a for a in self.agents if a.enabled]

    def model_for(self, agent: AgentConfig | str) -> ModelSpec:
        """The model an agent calls (its alias, else ``models.default``)."""
        a = self.agent(agent) if isinstance(agent, str) else agent
        return self.models.resolve(a.model)

    def flow(self, name: str) -> FlowConfig:
        try:
            return self.flows[name]
        except KeyError:
            raise KeyError(f"no flow named {name!r}; flows: {', '.join(self.flows)}") from None

    def visible_flows(self) -> dict[str, FlowConfig]:
        """Flows offered in the picker (not hidden)."""
        return {n: f for n, f in self.flows.items() if not f.hidden}

    def flow_agents(self, name: str) -> list[AgentConfig]:
        """The enabled agents taking part in a flow (all enabled agents if it names none)."""
        flow = self.flow(name)
        handles = flow.agent_handles()
        if not handles:
            return self.enabled_agents()
        return [a for h in handles for a in self.agents if a.handle == h and a.enabled]
