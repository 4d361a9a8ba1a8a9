"""Typed references to the collaboration functions (backend/model, docs/API.md).

``api.artifacts.get`` is ``QueryRef("artifacts:get")``. ``tests/client/test_api_refs.py`` checks
every reference against the registry of the embedded backend, so a misspelt name or a wrong
kind fails in CI. The same names exist on a Convex deployment running ``convex/``.
"""

from __future__ import annotations

from typing import Any

from collab.backend_client.refs import ActionRef, MutationRef, Namespace, QueryRef

Args = dict[str, Any]


class actors(Namespace):
    ensure = MutationRef[Args, Any]("actors:ensure")
    me = QueryRef[Args, Any]("actors:me")


class artifacts(Namespace):
    create = MutationRef[Args, Any]("artifacts:create")
    get = QueryRef[Args, Any]("artifacts:get")
    history = QueryRef[Args, Any]("artifacts:history")
    list = QueryRef[Args, Any]("artifacts:list")
    restore = MutationRef[Args, Any]("artifacts:restore")
    save = MutationRef[Args, Any]("artifacts:save")
    update = MutationRef[Args, Any]("artifacts:update")
    version = QueryRef[Args, Any]("artifacts:version")


class audit(Namespace):
    list = QueryRef[Args, Any]("audit:list")


class drafts(Namespace):
    append = MutationRef[Args, Any]("drafts:append")
    discard = MutationRef[Args, Any]("drafts:discard")
    get = QueryRef[Args, Any]("drafts:get")
    list = QueryRef[Args, Any]("drafts:list")


class locks(Namespace):
    acquire = MutationRef[Args, Any]("locks:acquire")
    forceRelease = MutationRef[Args, Any]("locks:forceRelease")
    leave = MutationRef[Args, Any]("locks:leave")
    list = QueryRef[Args, Any]("locks:list")
    queue = QueryRef[Args, Any]("locks:queue")
    release = MutationRef[Args, Any]("locks:release")
    renew = MutationRef[Args, Any]("locks:renew")


class messages(Namespace):
    append = MutationRef[Args, Any]("messages:append")
    finish = MutationRef[Args, Any]("messages:finish")
    list = QueryRef[Args, Any]("messages:list")
    markDecision = MutationRef[Args, Any]("messages:markDecision")
    markQuestion = MutationRef[Args, Any]("messages:markQuestion")
    outline = QueryRef[Args, Any]("messages:outline")
    page = QueryRef[Args, Any]("messages:page")
    post = MutationRef[Args, Any]("messages:post")


class notifications(Namespace):
    list = QueryRef[Args, Any]("notifications:list")
    markRead = MutationRef[Args, Any]("notifications:markRead")


class presence(Namespace):
    heartbeat = MutationRef[Args, Any]("presence:heartbeat")
    leave = MutationRef[Args, Any]("presence:leave")
    list = QueryRef[Args, Any]("presence:list")


class runs(Namespace):
    cancel = MutationRef[Args, Any]("runs:cancel")
    claim = MutationRef[Args, Any]("runs:claim")
    complete = MutationRef[Args, Any]("runs:complete")
    enqueue = MutationRef[Args, Any]("runs:enqueue")
    fail = MutationRef[Args, Any]("runs:fail")
    get = QueryRef[Args, Any]("runs:get")
    heartbeat = MutationRef[Args, Any]("runs:heartbeat")
    list = QueryRef[Args, Any]("runs:list")
    pending = QueryRef[Args, Any]("runs:pending")
    retry = MutationRef[Args, Any]("runs:retry")


class streams(Namespace):
    close = MutationRef[Args, Any]("streams:close")
    forArtifact = QueryRef[Args, Any]("streams:forArtifact")
    forMessage = QueryRef[Args, Any]("streams:forMessage")
    forSpace = QueryRef[Args, Any]("streams:forSpace")
    open = MutationRef[Args, Any]("streams:open")
    push = MutationRef[Args, Any]("streams:push")


class spaces(Namespace):
    addMember = MutationRef[Args, Any]("spaces:addMember")
    create = MutationRef[Args, Any]("spaces:create")
    get = QueryRef[Args, Any]("spaces:get")
    invite = MutationRef[Args, Any]("spaces:invite")
    join = MutationRef[Args, Any]("spaces:join")
    list = QueryRef[Args, Any]("spaces:list")
    members = QueryRef[Args, Any]("spaces:members")
    removeMember = MutationRef[Args, Any]("spaces:removeMember")
    setRole = MutationRef[Args, Any]("spaces:setRole")


class api(Namespace):
    actors = actors
    artifacts = artifacts
    audit = audit
    drafts = drafts
    locks = locks
    messages = messages
    notifications = notifications
    presence = presence
    runs = runs
    spaces = spaces
    streams = streams
