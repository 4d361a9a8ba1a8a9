"""Sync-protocol messages (PROTOCOL.md section 2), validated with pydantic at the edge.

Field names are the wire names (camelCase). Timestamps stay in their encoded base64 form here;
use :func:`collab.wire.values.decode_ts` to read them. Values (``args``,
``value``, ``result``, ``errorData``) stay in Convex-JSON form; decode them with
:func:`collab.wire.values.json_to_convex`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

U32 = Annotated[int, Field(ge=0, le=2**32 - 1)]
# A plain JSON number the receiver does arithmetic on: NaN, Infinity and overflowing literals
# (``1e999``) are not numbers a strict JSON parser accepts, so they are refused at the edge.
Finite = Annotated[float, Field(allow_inf_nan=False)]


class _Msg(BaseModel):
    # Unknown fields are tolerated (newer clients add some); what we read is strictly typed.
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


# --- client -> server -------------------------------------------------------------------------


class Connect(_Msg):
    type: Literal["Connect"]
    sessionId: str = Field(min_length=1, max_length=128)
    connectionCount: U32
    lastCloseReason: str | None = None
    maxObservedTimestamp: str | None = None
    clientTs: Finite | None = None


class QueryAdd(_Msg):
    type: Literal["Add"]
    queryId: U32
    udfPath: str = Field(max_length=1024)
    args: list[Any]
    journal: str | None = None
    componentPath: str | None = None


class QueryRemove(_Msg):
    type: Literal["Remove"]
    queryId: U32


QueryModification = Annotated[Union[QueryAdd, QueryRemove], Field(discriminator="type")]


class ModifyQuerySet(_Msg):
    type: Literal["ModifyQuerySet"]
    baseVersion: U32
    newVersion: U32
    modifications: list[QueryModification]


class Mutation(_Msg):
    type: Literal["Mutation"]
    requestId: U32
    udfPath: str = Field(max_length=1024)
    args: list[Any]
    componentPath: str | None = None


class Action(_Msg):
    type: Literal["Action"]
    requestId: U32
    udfPath: str = Field(max_length=1024)
    args: list[Any]
    componentPath: str | None = None


class Authenticate(_Msg):
    type: Literal["Authenticate"]
    baseVersion: U32
    tokenType: Literal["User", "Admin", "None"]
    value: str | None = None
    impersonating: Any = None
    acting_as: Any = None


class Event(_Msg):
    type: Literal["Event"]
    eventType: str
    event: Any = None


ClientMessage = Annotated[
    Union[Connect, ModifyQuerySet, Mutation, Action, Authenticate, Event],
    Field(discriminator="type"),
]
client_message_adapter: TypeAdapter[ClientMessage] = TypeAdapter(ClientMessage)


# --- server -> client -------------------------------------------------------------------------


class StateVersion(_Msg):
    querySet: U32
    identity: U32
    ts: str


class QueryUpdated(_Msg):
    type: Literal["QueryUpdated"]
    queryId: U32
    value: Any = None
    logLines: list[str] = Field(default_factory=list)
    journal: str | None = None


class QueryFailed(_Msg):
    type: Literal["QueryFailed"]
    queryId: U32
    errorMessage: str
    logLines: list[str] = Field(default_factory=list)
    journal: str | None = None
    errorData: Any = None


class QueryRemoved(_Msg):
    type: Literal["QueryRemoved"]
    queryId: U32


StateModification = Annotated[
    Union[QueryUpdated, QueryFailed, QueryRemoved], Field(discriminator="type")
]


class Transition(_Msg):
    type: Literal["Transition"]
    startVersion: StateVersion
    endVersion: StateVersion
    modifications: list[StateModification]
    clientClockSkew: float | None = None  # unused by the client: accepted as it comes
    serverTs: int | None = None


class MutationResponse(_Msg):
    type: Literal["MutationResponse"]
    requestId: U32
    success: bool
    result: Any = None
    ts: str | None = None
    logLines: list[str] = Field(default_factory=list)
    errorData: Any = None


class ActionResponse(_Msg):
    type: Literal["ActionResponse"]
    requestId: U32
    success: bool
    result: Any = None
    logLines: list[str] = Field(default_factory=list)
    errorData: Any = None


class AuthError(_Msg):
    type: Literal["AuthError"]
    error: str
    baseVersion: U32 | None = None
    authUpdateAttempted: bool | None = None


class FatalError(_Msg):
    type: Literal["FatalError"]
    error: str


class Ping(_Msg):
    type: Literal["Ping"]


ServerMessage = Annotated[
    Union[Transition, MutationResponse, ActionResponse, AuthError, FatalError, Ping],
    Field(discriminator="type"),
]
server_message_adapter: TypeAdapter[ServerMessage] = TypeAdapter(ServerMessage)
