"""collab.flows: agents and their model calls (no Textual here).

- ``llm``: ``stream_completion`` (the one place that calls models, through litellm), ``TokenChunk``,
  ``Usage``, ``warm_up``.
- ``errors``: the user-facing failures of a model call (``MissingApiKey``, ``RateLimited``, ...).
- ``cadence``: ``StreamBatcher``, the UI and persistence streaming cadences.
- ``local_model``, ``local_provider``: the offline default model (llama.cpp, from the prebuilt
  xllamacpp wheel, as litellm provider ``local/``).
- ``worker``, ``discussion``, ``edit``, ``live``, ``prompts``, ``context``: the run worker and the
  agent flows (docs/AGENTS.md).
- ``testing``: the loopback OpenAI-compatible server and a virtual clock, for tests and bench.

Modules are imported on demand: importing ``collab.flows`` costs nothing (litellm is loaded on
the first model call).
"""
