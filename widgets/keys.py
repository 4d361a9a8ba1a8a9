"""Bindings built from the config's catalogue (``collab.config.BINDINGS``): the default key,
the description and the stable id all come from one place, so ``App.set_keymap`` with the
user's ``[keymap]`` remaps every one of them."""

from __future__ import annotations

from textual.binding import Binding

from collab.config import BINDINGS_BY_ID


def binding(binding_id: str, action: str, *, show: bool = True, priority: bool = False,
            description: str | None = None) -> Binding:
    spec = BINDINGS_BY_ID[binding_id]
    short = description or spec.description.split(" (")[0].split(":")[0]
    return Binding(spec.default, action, short, show=show, priority=priority or spec.priority,
                   id=binding_id, tooltip=spec.description)


def artifact_bindings() -> list[Binding]:
    """The artifact scope, on the artifacts pane: the same keys whether the tree or the
    document view has the focus."""
    return [
        # Priority: resolved in the app's own key loop, in order with the keys typed after it,
        # so the editor is focused before the next key is dispatched (no key is lost to a race).
        binding("artifact.edit", "edit_artifact", description="Edit", priority=True),
        binding("artifact.new", "new_artifact", description="New"),
        binding("artifact.history", "history", description="History"),
        binding("artifact.wait_lock", "wait_lock", show=False),
        binding("artifact.force_unlock", "force_unlock", show=False),
        binding("artifact.copy", "copy_artifact", show=False),
        binding("artifact.export", "export_artifact", show=False),
        binding("artifact.tag", "tag_artifact", show=False),
        binding("artifact.rename", "rename_artifact", show=False),
        binding("artifact.discuss", "discuss", show=False),
        binding("artifact.delete", "delete_artifact", show=False),
        binding("artifact.pipeline", "pipeline", show=False),  # the document says "p opens it"
        binding("artifact.variations", "variations", description="Variations"),
        binding("artifact.flow", "flow", show=False),
    ]
