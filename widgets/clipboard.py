"""Copying to the user's clipboard through the terminal (OSC 52, ``App.copy_to_clipboard``),
unless the config turned it off (``ui.clipboard = "off"``: for terminals that print the escape
sequence instead of honouring it)."""

from __future__ import annotations

from textual.dom import DOMNode

from collab.config import Config


def copy_text(node: DOMNode, config: Config, text: str, what: str) -> bool:
    """Copy ``text`` and say so (``what`` names it); with the clipboard off, say why nothing
    was copied. Returns whether it was copied."""
    if config.ui.clipboard == "off":
        node.notify('Nothing copied: the clipboard is off in your config (ui.clipboard = "off").',
                    severity="warning")
        return False
    node.app.copy_to_clipboard(text)
    node.notify(f"Copied {what} (OSC 52).")
    return True
