"""The members screen (``f5``, or the palette's "Members"): every human and agent of the space
with role, online, what each views, holds and waits for, what each agent is doing and what it
cost (today, since the app was opened, all time); the space's invites; and for owners the
actions: invite, change a role, remove a member, revoke an invite, force a lock open with a
reason. Each action is one mutation; the backend audits who did it and notifies the member.

Everything on it is a live query bound here (members, presence, locks, waiters, active runs,
usage, invites), so it changes while it is open. A viewer or editor sees the same lists with
the owner keys disabled, and is told why when pressing one."""

from __future__ import annotations

import time
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from collab.backend_client import ConvexError
from collab.backend_client.space import SpaceSession, error_text
from collab.screens.dialogs import MessageDialog, Prompt
from collab.widgets.keys import binding
from collab.widgets.live import LiveBinding
from collab.widgets.usage import money, tokens

OWNER_ACTIONS = {"invite", "role", "remove", "revoke", "force_release"}


class MembersScreen(Screen[None]):
    BINDINGS = [
        binding("members.invite", "invite", description="Invite"),
        binding("members.role", "role", description="Role"),
        binding("members.remove", "remove", description="Remove"),
        binding("members.revoke", "revoke", description="Revoke"),
        binding("members.force_release", "force_release", description="Unlock"),
        binding("app.back", "back", description="Back"),
        Binding("tab", "app.focus_next", show=False),
    ]

    def __init__(self, session: SpaceSession) -> None:
        super().__init__()
        self.session = session
        self.view = session.members
        self.members: list[dict[str, Any]] = []
        self.presence: list[dict[str, Any]] = []
        self.locks: list[dict[str, Any]] = []
        self.waiting: list[dict[str, Any]] = []
        self.runs: list[dict[str, Any]] = []
        self.usage: dict[str, Any] = {}
        self.invites: list[dict[str, Any]] = []
        self.slugs: dict[str, str] = {}
        self._lives: list[LiveBinding] = []

    def compose(self) -> ComposeResult:
        yield Static(id="members-title")
        yield DataTable(id="members-table", cursor_type="row", zebra_stripes=True)
        yield Static(Text("Invites", style="bold"), id="invites-title")
        yield DataTable(id="invites-table", cursor_type="row")
        yield Static(id="members-help")
        yield Footer()

    def on_mount(self) -> None:
        s = self.session
        table = self.query_one("#members-table", DataTable)
        table.add_columns("member", "role", "here", "viewing", "holds", "waits", "doing", "today", "session", "all")
        self.query_one("#invites-table", DataTable).add_columns("code", "role", "uses", "expires", "by", "state")

        def bind(live: Any, attr: str) -> None:
            b = LiveBinding(self, lambda v, a=attr: self._set(a, v), lambda err: None)
            b.bind(live)
            self._lives.append(b)

        bind(self.view.watch_members(), "members")
        bind(s.watch_presence(), "presence")
        bind(s.artifacts.watch_locks(), "locks")
        bind(s.artifacts.watch_list(), "artifacts")
        bind(self.view.watch_waiting(), "waiting")
        bind(self.view.watch_active_runs(), "runs")
        bind(self.view.watch_usage(), "usage")
        if self.view.is_owner:
            bind(self.view.watch_invites(), "invites")
        self.view.on_role_change.append(self._role_changed)
        table.focus()
        self._draw()

    def on_unmount(self) -> None:
        for b in self._lives:
            b.close()
        if self._role_changed in self.view.on_role_change:
            self.view.on_role_change.remove(self._role_changed)

    def _role_changed(self, role: str) -> None:
        self.call_later(self.refresh_bindings)
        self.call_later(self._draw)

    def _set(self, attr: str, value: Any) -> None:
        if attr == "artifacts":
            self.slugs = {str(a["_id"]): str(a.get("slug") or a.get("title")) for a in value or []}
        elif attr == "usage":
            self.usage = value or {}
        else:
            setattr(self, attr, list(value or []))
        self._draw()

    # ------------------------------------------------------------------ drawing

    def _cost(self, which: int | None, agent_id: str) -> str:
        block = self.usage.get("allTime") if which is None else (self.usage.get("windows") or [{}, {}])[which]
        for a in (block or {}).get("agents", []):
            if a["agentId"] == agent_id:
                return f"{money(a['costUsd'])} {tokens(a['promptTokens'] + a['completionTokens'])}"
        return "-"

    def rows(self) -> list[tuple[str, list[str]]]:
        """(actorId, cells) per member: humans first, then agents."""
        here: dict[str, set[str]] = {}
        for p in self.presence:
            views = here.setdefault(str(p["actorId"]), set())
            if p.get("artifactId"):
                views.add("#" + self.slugs.get(str(p["artifactId"]), "?"))
        holds: dict[str, list[str]] = {}
        for lk in self.locks:
            h = lk.get("holder") or {}
            if h.get("actorId"):
                holds.setdefault(str(h["actorId"]), []).append("#" + self.slugs.get(str(lk["artifactId"]), "?"))
        waits: dict[str, list[str]] = {}
        for w in self.waiting:
            waits.setdefault(str(w["actorId"]), []).append(f"#{self.slugs.get(str(w['artifactId']), '?')}"
                                                           f"({w['position']})")
        doing: dict[str, str] = {}
        for r in self.runs:
            doing.setdefault(str(r["agentId"]), {"queued": "queued", "claimed": "thinking"}.get(
                r["status"], "writing") + (f" #{self.slugs.get(str(r['artifactId']), '?')}" if r.get("artifactId")
                                           else ""))
        out = []
        for m in sorted(self.members, key=lambda m: (m.get("kind") == "agent", m.get("handle"))):
            aid = str(m["actorId"])
            agent = m.get("kind") == "agent"
            me = " (you)" if aid == self.session.actor_id else ""
            out.append((aid, [
                f"@{m['handle']}{me}" + (" ⚙" if agent else ""), str(m["role"]),
                "●" if aid in here else "○", ",".join(sorted(here.get(aid, set()))) or "-",
                ",".join(holds.get(aid, [])) or "-", ",".join(waits.get(aid, [])) or "-",
                (doing.get(aid, "idle") if agent else "-"),
                self._cost(0, aid) if agent else "", self._cost(1, aid) if agent else "",
                self._cost(None, aid) if agent else "",
            ]))
        return out

    def _draw(self) -> None:
        if not self.is_mounted:
            return
        s = self.session
        title = Text.assemble((f" {s.space_name} ", "bold reverse"), f"  {len(self.members)} members · you are ",
                              (s.role, "bold"))
        self.query_one("#members-title", Static).update(title)
        table = self.query_one("#members-table", DataTable)
        row = table.cursor_row
        table.clear()
        for aid, cells in self.rows():
            table.add_row(*cells, key=aid)
        if self.members:
            table.move_cursor(row=min(row, len(self.members) - 1))
        invites = self.query_one("#invites-table", DataTable)
        invites.clear()
        now_ms = s.clock() * 1000
        for inv in self.invites:
            exp = inv.get("expiresAt")
            state = "revoked" if inv["revoked"] else "expired" if exp is not None and now_ms >= exp else \
                "used up" if inv.get("maxUses") is not None and inv["uses"] >= inv["maxUses"] else "open"
            invites.add_row(inv["hint"] + "…", inv["role"], f"{inv['uses']}/{inv.get('maxUses') or '∞'}",
                            time.strftime("%m-%d %H:%M", time.localtime(exp / 1000)) if exp else "never",
                            "@" + str(inv.get("createdByHandle")), state, key=str(inv["inviteId"]))
        self.query_one("#invites-title").display = self.view.is_owner
        invites.display = self.view.is_owner
        help_text = ("i invite · r role · x remove · v revoke (invites) · u unlock · tab: members/invites · escape: back"
                     if self.view.is_owner else
                     "Only owners change roles, remove members, invite and force locks open. escape: back")
        self.query_one("#members-help", Static).update(Text(help_text, style="dim"))

    # ------------------------------------------------------------------ owner actions

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in OWNER_ACTIONS and not self.view.is_owner:
            return None  # shown disabled; pressing it says why (on_key)
        return True

    def on_key(self, event: Any) -> None:
        if self.view.is_owner:
            return
        for b in self._bindings.key_to_bindings.get(event.key, []):  # Textual's map: the keymap applied
            if b.action in OWNER_ACTIONS:
                event.stop()
                self.notify("Only owners of the space do that: you are " + self.session.role + ".",
                            severity="warning")
                return

    def _selected_member(self) -> dict[str, Any] | None:
        table = self.query_one("#members-table", DataTable)
        if not self.members or table.cursor_row < 0:
            return None
        rows = self.rows()
        if table.cursor_row >= len(rows):
            return None
        aid = rows[table.cursor_row][0]
        return next((m for m in self.members if str(m["actorId"]) == aid), None)

    async def _do(self, what: str, coro: Any) -> bool:
        try:
            await coro
        except ConvexError as exc:
            self.notify(f"{what}: {error_text(exc)}", severity="error")
            return False
        except Exception as exc:
            self.notify(f"{what}: {error_text(exc)} (backend unreachable?)", severity="error")
            return False
        return True

    @work(group="members")
    async def action_invite(self) -> None:
        answer = await self.app.push_screen_wait(Prompt(
            "Invite as (editor or viewer), uses, expiry:", "editor 1 24h"))
        if not answer:
            return
        parts = answer.split()
        role = parts[0] if parts else "editor"
        try:
            uses = int(parts[1]) if len(parts) > 1 else 1
            expires = _duration(parts[2]) if len(parts) > 2 else 24 * 3600
        except ValueError:
            self.notify("Write e.g. `editor 1 24h` (role, uses, expiry: 30m, 24h, 7d or never).", severity="error")
            return
        if role not in ("editor", "viewer"):
            self.notify("The role is editor or viewer.", severity="error")
            return
        try:
            got = await self.view.invite(role=role, uses=uses, expires_s=expires)
        except ConvexError as exc:
            self.notify(f"Cannot invite: {error_text(exc)}", severity="error")
            return
        url, pin, notes = self.session.team_url or ("URL", None, [])
        line = f"collab join {url} {got['code']}" + (f" --pin {pin}" if pin else "")
        self.app.copy_to_clipboard(line)
        await self.app.push_screen_wait(MessageDialog(
            "Send this line to your teammate (copied, OSC 52)", line + "\n\n" + "\n".join(notes)))

    @work(group="members")
    async def action_role(self) -> None:
        m = self._selected_member()
        if m is None:
            return
        role = await self.app.push_screen_wait(Prompt(f"New role for @{m['handle']} (owner, editor or viewer):",
                                                      str(m["role"])))
        if role and role.strip() in ("owner", "editor", "viewer"):
            if await self._do("Cannot change the role", self.view.set_role(str(m["actorId"]), role.strip())):
                self.notify(f"@{m['handle']} is now {role.strip()} (they were told).")
        elif role:
            self.notify("The role is owner, editor or viewer.", severity="error")

    @work(group="members")
    async def action_remove(self) -> None:
        m = self._selected_member()
        if m is None:
            return
        typed = await self.app.push_screen_wait(Prompt(f"Remove @{m['handle']} from {self.session.space_name}? "
                                                       "Type the handle to confirm:"))
        if typed and typed.strip().lstrip("@") == m["handle"]:
            if await self._do("Cannot remove", self.view.remove(str(m["actorId"]))):
                self.notify(f"Removed @{m['handle']} (they were told).")

    @work(group="members")
    async def action_revoke(self) -> None:
        table = self.query_one("#invites-table", DataTable)
        if not self.invites or table.cursor_row < 0 or table.cursor_row >= len(self.invites):
            self.notify("Select an invite first (tab moves to the invites).", severity="warning")
            return
        inv = self.invites[table.cursor_row]
        if await self._do("Cannot revoke", self.view.revoke(str(inv["inviteId"]))):
            self.notify(f"Revoked the invite {inv['hint']}…: its code no longer works.")

    @work(group="members")
    async def action_force_release(self) -> None:
        m = self._selected_member()
        if m is None:
            return
        held = [lk for lk in self.locks if str((lk.get("holder") or {}).get("actorId")) == str(m["actorId"])]
        if not held:
            self.notify(f"@{m['handle']} holds no lock.", severity="warning")
            return
        slug = self.slugs.get(str(held[0]["artifactId"]), "?")
        reason = await self.app.push_screen_wait(Prompt(f"Force open @{m['handle']}'s lock on #{slug}. "
                                                        "Reason (they are told):"))
        if reason:
            if await self._do("Cannot force the lock", self.view.force_release(str(held[0]["artifactId"]), reason)):
                self.notify(f"The lock on #{slug} is open; @{m['handle']} was told why.")

    def action_back(self) -> None:
        self.app.pop_screen()

    @on(DataTable.RowSelected)
    def _noop(self, event: DataTable.RowSelected) -> None:
        event.stop()


def _duration(text: str) -> float | None:
    if text.lower() in ("never", "none"):
        return None
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    if not text or text[-1] not in units:
        raise ValueError(text)
    return float(text[:-1]) * units[text[-1]]
