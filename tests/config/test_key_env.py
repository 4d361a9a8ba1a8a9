"""Which environment variable must hold a model's key, so a missing key is reported up front."""

from __future__ import annotations

from collab.config import load_config_text


def _model(text: str):  # type: ignore[no-untyped-def]
    config = load_config_text(text)
    return config.model_for(config.enabled_agents()[0])


def test_hosted_provider_uses_its_usual_variable() -> None:
    m = _model('[models]\ndefault = "anthropic/claude-3-5-haiku-latest"\n')
    assert m.key_env == "ANTHROPIC_API_KEY"
    assert "ANTHROPIC_API_KEY is not set" in (m.missing_key({}) or "")
    assert m.missing_key({"ANTHROPIC_API_KEY": "k"}) is None


def test_explicit_variable_wins_and_self_hosted_needs_none() -> None:
    m = _model('[models]\ndefault = "fast"\n[models.aliases.fast]\nmodel = "openai/gpt-4o-mini"\n'
               'api_key_env = "WORK_OPENAI_KEY"\n')
    assert m.key_env == "WORK_OPENAI_KEY"
    assert "WORK_OPENAI_KEY is not set" in (m.missing_key({"OPENAI_API_KEY": "k"}) or "")
    m = _model('[models]\ndefault = "lan"\n[models.aliases.lan]\nmodel = "openai/llama"\n'
               'api_base = "http://127.0.0.1:8080/v1"\n')
    assert m.key_env is None and m.missing_key({}) is None


def test_local_and_unknown_providers_are_left_alone() -> None:
    assert _model("").key_env is None  # the bundled local model
    assert _model('[models]\ndefault = "bedrock/anthropic.claude-v2"\n').key_env is None
