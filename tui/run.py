"""Run the app in the terminal."""

from __future__ import annotations

import os

from collab.tui.bootstrap import BootstrapError, LaunchOptions, load


def run(options: LaunchOptions) -> int:
    # litellm must never load in the TUI process (2 s import); if some import ever pulls it in,
    # at least it must not go to the network for its cost map.
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    try:
        config = load(options)
    except BootstrapError:
        config = None  # the app loads it again and shows the message (file, line) with a retry
    from collab.tui.app import CollabApp

    app = CollabApp(options, config=config)
    app.run(mouse=config.ui.mouse if config else True)
    return app.return_code or 0
