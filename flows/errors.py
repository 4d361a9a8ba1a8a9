"""The few ways a model call can fail, as the user should read them.

Every failure of a model call surfaces as one of these (``flows.llm`` classifies litellm's and the
providers' exceptions), so the run worker can post ``str(error)`` in the thread as it is: one
clear sentence naming the agent and the model, never a traceback. The original exception stays
on ``__cause__`` for logs.
"""

from __future__ import annotations


class LLMError(Exception):
    """Base class. ``str(err)`` is a user-facing sentence; ``retryable`` says whether trying the
    same call again later may succeed (the worker's retry policy reads it)."""

    retryable: bool = False

    def __init__(self, detail: str, *, model: str, agent: str | None = None) -> None:
        self.detail = detail
        self.model = model
        self.agent = agent
        super().__init__(f"{_who(model, agent)}: {detail}")

    @property
    def user_message(self) -> str:
        return str(self)


class MissingApiKey(LLMError):
    """No key for the model's provider: names the environment variable to set."""

    def __init__(self, *, env_var: str, model: str, agent: str | None = None) -> None:
        self.env_var = env_var
        super().__init__(
            f"no API key: set the environment variable {env_var} "
            f"(or pick another model for this agent in the config)",
            model=model,
            agent=agent,
        )


class RateLimited(LLMError):
    """The provider said "slow down" (HTTP 429)."""

    retryable = True

    def __init__(
        self,
        detail: str,
        *,
        model: str,
        agent: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.retry_after = retry_after
        if retry_after is not None:
            detail = f"{detail} (retry after {retry_after:g} s)"
        super().__init__(detail, model=model, agent=agent)


class ProviderTimeout(LLMError):
    """No answer (or no next token) within the timeout."""

    retryable = True

    def __init__(self, *, timeout: float, model: str, agent: str | None = None) -> None:
        self.timeout = timeout
        super().__init__(f"the provider sent nothing for {timeout:g} s", model=model, agent=agent)


class ModelNotFound(LLMError):
    """The model name (or its provider prefix) is unknown to litellm or to the provider."""


class ProviderError(LLMError):
    """Anything else the provider or the connection to it reported; ``provider_message`` is the
    provider's own words."""

    def __init__(
        self,
        detail: str,
        *,
        model: str,
        agent: str | None = None,
        status_code: int | None = None,
        retryable: bool = False,
    ) -> None:
        self.provider_message = detail
        self.status_code = status_code
        self.retryable = retryable
        super().__init__(detail, model=model, agent=agent)


class AuthenticationFailed(ProviderError):
    """A key was sent and the provider rejected it (HTTP 401/403)."""


def _who(model: str, agent: str | None) -> str:
    if agent:
        handle = agent if agent.startswith("@") else f"@{agent}"
        return f"{handle} ({model})"
    return model
