"""One module per ``collab`` subcommand. Each exposes ``register(subparsers)`` (adds its parser
and sets ``handler`` on it) and keeps its imports lazy so ``collab --help`` stays fast."""

COMMANDS = ["serve", "token", "worker", "locate", "doctor", "export", "codegen", "run", "watch", "invite", "join"]
