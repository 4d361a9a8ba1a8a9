"""Test doubles that ship with the package, because the benchmarks and the CI end-to-end tests
use them too: a loopback OpenAI-compatible streaming server and a virtual clock.

Nothing here is imported by the app itself."""
