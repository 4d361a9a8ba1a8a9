"""Every key binding id of the catalogue (``collab.config.BINDINGS``, documented in
docs/CONFIG.md) is bound in the app to an action that exists on the node that declares it,
except the ids of a view still being built, listed in ``PENDING_VIEWS``: that set must be
exactly the ids still unbound, so binding one of them makes this test fail until it is taken
out of the set."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Iterator

from textual.actions import parse
from textual.binding import Binding
from textual.dom import DOMNode

import collab.screens
import collab.tui
import collab.widgets
from collab.config import BINDINGS

# Every view is built: the variations view, the flow picker and the pipeline view bound their
# keys and left this set. A view in progress lists its catalogue ids here.
PENDING_VIEWS: frozenset[str] = frozenset()


def _nodes() -> Iterator[type[DOMNode]]:
    """Every screen, pane, widget and the app class defined in the app's packages."""
    for package in (collab.tui, collab.screens, collab.widgets):
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if info.name.startswith("collab.tui.commands"):
                continue  # the CLI, no Textual
            module = importlib.import_module(info.name)
            for _, cls in inspect.getmembers(module, inspect.isclass):
                if cls.__module__ == module.__name__ and issubclass(cls, DOMNode):
                    yield cls


def _bound() -> dict[str, list[str]]:
    """binding id -> the nodes that bind it, each checked to have the binding's action."""
    found: dict[str, list[str]] = {}
    for cls in _nodes():
        for b in cls.__dict__.get("BINDINGS", []):
            if not isinstance(b, Binding) or b.id is None:
                continue
            namespace, name, _args = parse(b.action)
            assert not namespace, f"{cls.__name__}: {b.id} names another node's action {b.action!r}"
            assert callable(getattr(cls, f"action_{name}", None)), (
                f"{cls.__module__}.{cls.__name__} binds {b.id} to {b.action!r}, which it does not have")
            found.setdefault(b.id, []).append(cls.__name__)
    return found


def test_every_binding_id_is_bound_to_an_existing_action() -> None:
    bound = _bound()
    catalogue = {b.id for b in BINDINGS}
    assert set(bound) <= catalogue, f"bound ids missing from the catalogue: {set(bound) - catalogue}"
    unbound = catalogue - set(bound)
    assert unbound == PENDING_VIEWS, (
        f"bound nothing (build them or remove them from the catalogue and docs): {sorted(unbound - PENDING_VIEWS)}; "
        f"bound now, take them out of PENDING_VIEWS: {sorted(PENDING_VIEWS - unbound)}")


def test_pending_views_are_the_documented_view_keys() -> None:
    """The pending set names only catalogue ids (a typo would hide a real unbound key)."""
    assert PENDING_VIEWS <= {b.id for b in BINDINGS}
