"""``[models]``: LLM models by alias. Every call goes through litellm, so ``model`` is a litellm
model name (``openai/gpt-4o-mini``, ``anthropic/...``, ``ollama/llama3.2``...).

Keys never live in the config: ``api_key_env`` names the environment variable that holds one.
No key is needed to start the app; an agent whose key is missing fails alone, with a message
naming the variable (see ``ModelSpec.missing_key``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

from pydantic import Field, field_validator, model_validator

from .base import Section

ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
ALIAS = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,31}$")

# The offline default: a small llama.cpp model that collab.flows registers as a litellm custom
# provider; it needs no key and no network.
LOCAL_PROVIDER = "local"
LOCAL_MODEL = f"{LOCAL_PROVIDER}/smollm2"



# What litellm reads for a hosted provider when no api_key_env is given (its own defaults).
PROVIDER_KEY_ENV = {
    "openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY", "gemini": "GEMINI_API_KEY",
    "mistral": "MISTRAL_API_KEY", "groq": "GROQ_API_KEY", "deepseek": "DEEPSEEK_API_KEY",
    "openrouter": "OPENROUTER_API_KEY", "xai": "XAI_API_KEY", "cohere": "COHERE_API_KEY",
    "together_ai": "TOGETHERAI_API_KEY", "fireworks_ai": "FIREWORKS_AI_API_KEY",
}

class ModelSpec(Section):
    model: str = Field(
        min_length=1, description="litellm model name, e.g. openai/gpt-4o-mini."
    )
    api_base: str | None = Field(
        default=None, description="Base URL of the provider (OpenAI-compatible servers, ollama)."
    )
    api_key_env: str | None = Field(
        default=None,
        description=(
            "Environment variable holding the API key, e.g. OPENAI_API_KEY. Unset: the "
            "provider's usual variable, as litellm reads it."
        ),
    )
    max_tokens: int | None = Field(default=None, gt=0, description="Cap on reply length.")
    timeout_s: float = Field(default=120.0, gt=0, le=3600, description="Per-request timeout.")
    params: dict[str, Any] = Field(
        default_factory=dict,
        description="Extra keyword arguments passed to litellm.acompletion as they are.",
    )

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        # `fast = "openai/gpt-4o-mini"` is shorthand for `fast = { model = "..." }`.
        if isinstance(data, str):
            return {"model": data}
        if isinstance(data, dict) and "api_key" in data:
            raise ValueError(
                "do not write API keys in the config file: set api_key_env = \"NAME\" and "
                "export NAME in your shell"
            )
        return data

    @field_validator("api_key_env")
    @classmethod
    def _env_name(cls, value: str | None) -> str | None:
        if value is not None and not ENV_NAME.match(value):
            raise ValueError(
                "must be the NAME of the environment variable holding the key (like "
                "OPENAI_API_KEY), not the key itself"
            )
        return value

    @property
    def is_local(self) -> bool:
        """True for the bundled offline model (no key, no network)."""
        return self.model.startswith(LOCAL_PROVIDER + "/")

    def api_key(self, env: Mapping[str, str] | None = None) -> str | None:
        """The key from ``api_key_env``, or None (litellm then looks in its usual places)."""
        if self.api_key_env is None:
            return None
        return (os.environ if env is None else env).get(self.api_key_env) or None

    @property
    def key_env(self) -> str | None:
        """The variable that must hold the key: ``api_key_env``, else the provider's usual one
        (for hosted providers litellm knows; none when ``api_base`` points elsewhere)."""
        if self.api_key_env:
            return self.api_key_env
        if self.api_base or self.is_local:
            return None
        return PROVIDER_KEY_ENV.get(self.model.split("/", 1)[0]) if "/" in self.model else None

    def missing_key(self, env: Mapping[str, str] | None = None) -> str | None:
        """A message if the key's variable is known and empty, else None: ``collab doctor`` and
        the composer say so before a run fails."""
        name = self.key_env
        if name and not (os.environ if env is None else env).get(name):
            return f"{self.model}: the environment variable {name} is not set"
        return None

    def litellm_kwargs(self, env: Mapping[str, str] | None = None) -> dict[str, Any]:
        """Keyword arguments for ``litellm.acompletion`` (without messages and stream)."""
        kw: dict[str, Any] = {"model": self.model, "timeout": self.timeout_s, **self.params}
        if self.api_base:
            kw["api_base"] = self.api_base
        if self.max_tokens:
            kw["max_tokens"] = self.max_tokens
        key = self.api_key(env)
        if key:
            kw["api_key"] = key
        return kw


def default_aliases() -> dict[str, ModelSpec]:
    return {
        "local": ModelSpec(model=LOCAL_MODEL, max_tokens=512),
        "fast": ModelSpec(model="openai/gpt-4o-mini", api_key_env="OPENAI_API_KEY"),
        "smart": ModelSpec(model="anthropic/claude-sonnet-4-5", api_key_env="ANTHROPIC_API_KEY"),
        "ollama": ModelSpec(model="ollama/llama3.2", api_base="http://127.0.0.1:11434"),
    }


class ModelsConfig(Section):
    default: str = Field(
        default="local",
        description="Alias (or litellm model name) used by agents that name no model.",
    )
    aliases: dict[str, ModelSpec] = Field(
        default_factory=default_aliases,
        description="Alias -> model. An alias in your file replaces the built-in one wholly.",
    )

    @field_validator("aliases")
    @classmethod
    def _alias_names(cls, value: dict[str, ModelSpec]) -> dict[str, ModelSpec]:
        for name in value:
            if not ALIAS.match(name):
                raise ValueError(f"alias {name!r} must be a short name: letters, digits, - or _")
        return value

    def knows(self, name: str) -> bool:
        """An alias, or a litellm model name written out (``provider/model``)."""
        return name in self.aliases or "/" in name

    def resolve(self, name: str | None = None) -> ModelSpec:
        """Alias or litellm name (None: ``default``) -> the model to call."""
        name = name or self.default
        if name in self.aliases:
            return self.aliases[name]
        if "/" in name:
            return ModelSpec(model=name)
        raise KeyError(f"unknown model alias {name!r}; known: {', '.join(sorted(self.aliases))}")
