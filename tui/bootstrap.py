"""From nothing to a connected space session: config, backend, identity, space, agents.

First run on a fresh machine: write the commented config, create the directories, start (or
join) the embedded backend, mint the user's token, create the default space and add the
default agents as members. Every step raises :class:`BootstrapError` with a message a user can
act on; the app shows it and offers to retry. No Textual here.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from collab.backend_client import ConvexClient, ConvexError, FunctionError
from collab.backend_client.api import api
from collab.config import Config, ConfigError, load_config, resolve_paths, write_default_config
from collab.config.identity import handle_from_login, login_name
from collab.backend_client.space import NoSuchSpace, SpaceSession, open_session
from collab.backend_client.space.session import NotAMember


class BootstrapError(Exception):
    """A step failed; ``str()`` is the message to show."""


@dataclass
class LaunchOptions:
    """What the command line says (None: not given)."""

    url: str | None = None
    space: str | None = None
    config_path: Path | None = None
    data_dir: Path | None = None


def load(options: LaunchOptions, *, write_default: bool = True) -> Config:
    """Load the config (writing the commented default on first run)."""
    if write_default and options.config_path is None and not os.environ.get("COLLAB_CONFIG"):
        try:
            write_default_config()
        except OSError as exc:
            raise BootstrapError(f"cannot write the default config: {exc}") from exc
    overrides: dict[str, Any] = {"backend.url": options.url, "backend.space": options.space}
    if options.data_dir is not None:
        overrides["backend.data_dir"] = str(options.data_dir)
    try:
        config = load_config(options.config_path, overrides=overrides)
    except ConfigError as exc:
        raise BootstrapError(str(exc)) from exc
    return with_joined(config, options)


def forced_embedded(options: LaunchOptions) -> bool:
    """``--url embedded`` / ``COLLAB_URL=embedded``: this machine's backend, even after a join."""
    said = options.url if options.url is not None else os.environ.get("COLLAB_URL", "")
    return said.strip().lower() == "embedded"


def with_joined(config: Config, options: LaunchOptions) -> Config:
    """After ``collab join``, plain ``collab`` opens the joined backend and space (the last one
    joined), as the handle the code was exchanged for. A URL from the config file, the
    environment or ``--url`` wins, and so does ``--url embedded``."""
    if config.backend.url is not None or forced_embedded(options):
        return config
    from collab.tui import joined

    found = joined.default(resolve_paths().config_dir)
    if found is None:
        return config
    backend = config.backend.model_copy(update={"url": found.url, "space": options.space or found.space})
    identity = config.identity.model_copy(update={"handle": found.handle})
    return config.model_copy(update={"backend": backend, "identity": identity})


def my_handle(config: Config) -> str:
    return config.identity.handle or handle_from_login(login_name(os.environ))


@dataclass
class Endpoint:
    url: str
    token: str
    # Embedded only: the data dir whose signing key can mint any identity. Anyone who can read
    # it is trusted already, so a second local user joins an existing space through it.
    data_dir: Path | None = None
    ssl: Any = None  # an ssl.SSLContext for a backend with a pinned self-signed certificate
    joined: bool = False  # joined with an invite: open the space, never create one there


SPACES_FILE = "spaces.json"


def _read_spaces(data_dir: Path) -> dict[str, Any]:
    import json

    try:
        return dict(json.loads((data_dir / SPACES_FILE).read_text()))
    except (OSError, ValueError):
        return {}


def _remember_space(data_dir: Path, name: str, space_id: str, owner: str) -> None:
    import json

    spaces = _read_spaces(data_dir)
    spaces[name] = {"spaceId": space_id, "owner": owner}
    tmp = data_dir / (SPACES_FILE + ".tmp")
    tmp.write_text(json.dumps(spaces, indent=2) + "\n")
    tmp.replace(data_dir / SPACES_FILE)


async def _join_local(endpoint: Endpoint, name: str, handle: str, display: str) -> bool:
    """Embedded backend: add ``handle`` to the space ``name`` another local user created,
    acting as its owner (local trust, see :class:`Endpoint`). False if there is none."""
    if endpoint.data_dir is None:
        return False
    entry = _read_spaces(endpoint.data_dir).get(name)
    if not entry:
        return False
    from collab.backend.auth import Authority

    owner_token = Authority(endpoint.data_dir).mint(str(entry["owner"]), ttl_s=60)
    async with ConvexClient(endpoint.url, auth=owner_token) as owner:
        await owner.mutation(api.spaces.addMember, {"spaceId": entry["spaceId"], "handle": handle,
                                                    "kind": "human", "role": "editor", "name": display})
    return True


def backend_url_and_token(config: Config) -> Endpoint:
    """The URL to connect to and the user's token (embedded: started or joined here)."""
    handle = my_handle(config)
    if config.backend.url and config.backend.url != "embedded":
        from collab.tui import joined

        token = os.environ.get(config.backend.token_env, "")
        found = joined.find(resolve_paths().config_dir, config.backend.url)
        if not token and found is not None:
            token = found.token() or ""
        if not token:
            raise BootstrapError(
                f"backend.url is {config.backend.url} but ${config.backend.token_env} is empty and you "
                "have not joined it: run the `collab join URL CODE` line an owner of the space sent you "
                f"(or set ${config.backend.token_env} to your token for that deployment)"
            )
        return Endpoint(config.backend.url, token, ssl=found.ssl_context() if found else None,
                        joined=found is not None)
    from collab.tui.backend_launcher import BackendStartError, start_backend

    paths = resolve_paths(data_dir_path=config.data_dir)
    try:
        paths.ensure()
        found = start_backend(config.data_dir, paths.log_dir)
        data_dir = config.data_dir.expanduser().resolve()
        token = cached_token(data_dir, handle) or _mint_and_cache(data_dir, handle, config.identity.display_name)
    except (BackendStartError, OSError) as exc:
        raise BootstrapError(str(exc)) from exc
    return Endpoint(found.url, token, config.data_dir.expanduser().resolve())


TOKEN_DIR = "tokens"
TOKEN_TTL_S = 30 * 24 * 3600


def cached_token(data_dir: Path, handle: str, *, min_left_s: float = 24 * 3600) -> str | None:
    """A token minted earlier for ``handle`` on this data dir, if it has a day left.

    Minting needs jwt + cryptography (~80 ms of imports); every later start, and every
    extra tmux pane, skips them. The cache lives in the data dir (mode 0700), so it goes
    away with the key that signed it."""
    import base64
    import json
    import time

    path = data_dir / TOKEN_DIR / f"{handle}.jwt"
    try:
        token = path.read_text().strip()
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (OSError, IndexError, ValueError):
        return None
    if float(claims.get("exp", 0)) - time.time() < min_left_s:
        return None
    return token


def _mint_and_cache(data_dir: Path, handle: str, name: str | None) -> str:
    from collab.backend.auth import Authority, InsecureKeyFile

    try:
        token = Authority(data_dir).mint(handle, name=name or handle, ttl_s=TOKEN_TTL_S)
    except InsecureKeyFile as exc:
        raise BootstrapError(str(exc)) from exc
    folder = data_dir / TOKEN_DIR
    folder.mkdir(mode=0o700, exist_ok=True)
    tmp = folder / f".{handle}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token)
    tmp.replace(folder / f"{handle}.jwt")
    return token


async def open_space(client: ConvexClient, config: Config, *, space_name: str | None = None,
                     endpoint: Endpoint | None = None, clock: Callable[[], float] | None = None,
                     create: bool = True) -> SpaceSession:
    """Open (or, unless ``create`` is false, create) the space by name with the default agents:
    one ``spaces:open``. On the embedded backend a space another local user created is joined
    first (local trust), and a space created here is remembered for the next local user."""
    handle = my_handle(config)
    display = config.identity.display_name or handle
    local = endpoint.data_dir if endpoint is not None else None

    async def join(name: str) -> bool:
        assert endpoint is not None
        return await _join_local(endpoint, name, handle, display)

    async def open_it() -> SpaceSession:
        session = await open_session(client, config, handle=handle, space_name=space_name,
                                     join_local=join if local is not None else None, clock=clock,
                                     create=create and not (endpoint is not None and endpoint.joined),
                                     joined=endpoint is not None and endpoint.joined)
        if session.created and local is not None:
            _remember_space(local, session.space_name, session.space_id, handle)
        return session

    if local is None:
        return await open_it()
    # Two local users starting at once would each find no space to join and create their own:
    # find-join-or-create-and-remember is one step at a time per data folder.
    async with _spaces_lock(local):
        return await open_it()


@asynccontextmanager
async def _spaces_lock(data_dir: Path) -> AsyncIterator[None]:
    """An exclusive lock on the data folder's space registry (``spaces.json``), across processes."""
    import fcntl

    fd = os.open(data_dir / (SPACES_FILE + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        await asyncio.to_thread(fcntl.flock, fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


async def connect(
    config: Config,
    *,
    space_name: str | None = None,
    clock: Callable[[], float] | None = None,
    timeout_s: float = 15.0,
    create: bool = True,
) -> SpaceSession:
    """Start/join the backend, connect, open the space (created if missing, unless ``create``
    is false: then an unknown name is a :class:`BootstrapError` listing the user's spaces);
    returns the live session."""
    endpoint = await asyncio.to_thread(backend_url_and_token, config)
    url = endpoint.url
    client = ConvexClient(url, auth=endpoint.token, ssl=endpoint.ssl)
    try:
        await client.connect(timeout=timeout_s)
        session = await open_space(client, config, space_name=space_name, endpoint=endpoint, clock=clock,
                                   create=create)
    except NotAMember as exc:
        await client.close()
        raise BootstrapError(f"{url}: {exc}") from exc
    except NoSuchSpace as exc:
        names = sorted({str(s["name"]) for s in await client.query(api.spaces.list, {})})
        await client.close()
        raise BootstrapError(f"{exc} on {url} (yours: {', '.join(names) or 'none yet'})") from exc
    except TimeoutError as exc:
        await client.close()
        raise BootstrapError(f"the backend at {url} did not answer within {timeout_s:.0f} s") from exc
    except ConvexError as exc:
        await client.close()
        msg = exc.data.get("message") if isinstance(exc.data, dict) else exc
        raise BootstrapError(f"cannot open space {space_name or config.backend.space!r}: {msg}") from exc
    except FunctionError as exc:
        await client.close()
        if "Could not find public function" in str(exc):
            # Reached a backend (a Convex deployment, most likely) without collab's functions.
            raise BootstrapError(
                f"the backend at {url} does not serve collab's functions (it has no spaces:open). "
                "A Convex deployment needs them deployed from convex/ first (bash scripts/convex-deploy, "
                "docs/CONVEX.md); or use the embedded backend (no --url).") from exc
        raise BootstrapError(f"cannot open space {space_name or config.backend.space!r}: {exc}") from exc
    except Exception as exc:
        await client.close()
        raise BootstrapError(f"cannot connect to {url}: {exc}") from exc
    from collab.tui.commands.invite import team_url

    session.team_url = team_url(config)
    if endpoint.data_dir is not None:
        from collab.tui.backend_launcher import BackendKeeper

        session.keeper = BackendKeeper(endpoint.data_dir, resolve_paths(data_dir_path=config.data_dir).log_dir, url)
    return session
