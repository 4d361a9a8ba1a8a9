"""``collab serve``: run the embedded backend in the foreground until SIGINT / SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import ssl
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Protocol

from collab.backend.auth import InsecureKeyFile
from collab.backend.discovery import AlreadyRunning, acquire_lock, read_discovery, remove_discovery, write_discovery
from collab.backend.functions import App
from collab.backend.server import Backend, ServerOptions


class Companion(Protocol):
    """Something that runs beside the backend in its process (the agents' worker)."""

    async def stop(self) -> None: ...


# Started once the backend listens; returns the companion to stop before the backend stops.
StartCompanion = Callable[[Backend], Awaitable[Companion]]


LOOPBACK = ("127.0.0.1", "localhost", "::1")
ANY = ("0.0.0.0", "::", "")


def machine_addresses() -> list[str]:
    """This machine's IPv4 addresses, loopback last (Linux: from the interfaces; elsewhere: what
    the host name resolves to)."""
    import socket

    found: list[str] = []
    try:
        import fcntl
        import struct

        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for _, name in socket.if_nameindex():
                try:
                    raw = fcntl.ioctl(s.fileno(), 0x8915, struct.pack("256s", name.encode()[:15]))  # SIOCGIFADDR
                except OSError:
                    continue  # no IPv4 address on this interface
                found.append(socket.inet_ntoa(raw[20:24]))
    except (ImportError, OSError):
        pass
    if not found:
        try:
            found = sorted({str(i[4][0]) for i in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)})
        except OSError:
            found = []
    return sorted(set(found), key=lambda a: (a.startswith("127."), a))


def host_names() -> list[str]:
    import socket

    names = {socket.gethostname(), socket.getfqdn()}
    return sorted(n for n in names if n)


def team_url(options: ServerOptions, port: int, public_url: str | None) -> str | None:
    """The URL teammates use: ``--public-url``, the bound address, or for 0.0.0.0 this
    machine's first non-loopback address. None when the backend is on loopback only."""
    if public_url:
        return public_url.rstrip("/")
    if options.host in LOOPBACK:
        return None
    host = options.host
    if host in ANY:
        outward = [a for a in machine_addresses() if not a.startswith("127.")]
        if not outward:
            return None
        host = outward[0]
    if ":" in host:
        host = f"[{host}]"
    return f"{'https' if options.tls_cert else 'http'}://{host}:{port}"


def names_served(options: ServerOptions, public_url: str | None) -> tuple[str, ...]:
    """Host header values accepted besides loopback (the DNS-rebinding check): the bound
    address, for 0.0.0.0 every address and name of this machine, the public URL's host, and
    ``--allow-host``."""
    from urllib.parse import urlsplit

    names = set(options.allowed_hosts)
    if options.host in ANY:
        names.update(machine_addresses())
        names.update(host_names())
    if public_url:
        names.add(urlsplit(public_url).hostname or "")
    names.discard("")
    return tuple(sorted(names))


async def _serve(data_dir: Path, app: App | None, options: ServerOptions, quiet: bool,
                 companion: StartCompanion | None = None, public_url: str | None = None) -> None:
    backend = Backend(data_dir, app, options)
    await backend.start()
    shared = team_url(options, backend.port, public_url)
    write_discovery(data_dir, backend.local_url, public_url=shared,
                    tls_cert=str(options.tls_cert) if options.tls_cert else None)
    if not quiet:
        print(f"collab backend listening on {backend.url} (data: {data_dir}, pid {os.getpid()})", flush=True)
        if shared:
            print(f"teammates connect to {shared}: `collab invite` prints the line to send them", flush=True)
            if not options.tls_cert:
                print("WARNING: traffic is plaintext (tokens and everything you write cross the network in "
                      "clear): pass --tls-cert and --tls-key, or keep the backend on 127.0.0.1 and let "
                      "teammates come in through an SSH tunnel (docs/TEAMS.md)", flush=True)
        elif options.host in ANY:
            print("this machine has no address beyond loopback: teammates cannot reach it", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    running: Companion | None = None
    try:
        if companion is not None:
            try:
                running = await companion(backend)
            except Exception as exc:  # the backend is useful without its companion: say why, go on
                print(f"collab serve: {exc}", file=sys.stderr, flush=True)
            describe = getattr(running, "describe", None)
            if describe is not None and not quiet:
                print(describe(), flush=True)
        await stop.wait()
    finally:
        if running is not None:
            await running.stop()
        remove_discovery(data_dir)
        await backend.stop()


def run_server(
    data_dir: Path,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    functions: str | None = None,
    allowed_origins: tuple[str, ...] = (),
    durability: str = "normal",
    quiet: bool = False,
    companion: StartCompanion | None = None,
    tls_cert: Path | None = None,
    tls_key: Path | None = None,
    allowed_hosts: tuple[str, ...] = (),
    public_url: str | None = None,
) -> int:
    """Returns the process exit code; every failure is one clear line on stderr."""
    data_dir = data_dir.expanduser().resolve()
    logging.basicConfig(level=os.environ.get("COLLAB_LOG_LEVEL", "WARNING"), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        lock = acquire_lock(data_dir)
    except AlreadyRunning as exc:
        print(f"collab serve: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"collab serve: cannot use data dir {data_dir}: {exc}", file=sys.stderr)
        return 1
    try:
        app = App.from_package(functions) if functions else None
        if (tls_cert is None) != (tls_key is None):
            print("collab serve: TLS needs both --tls-cert and --tls-key", file=sys.stderr)
            return 2
        for path in (tls_cert, tls_key):
            if path is not None and not path.is_file():
                print(f"collab serve: no such file: {path}", file=sys.stderr)
                return 2
        options = ServerOptions(host=host, port=port, allowed_origins=allowed_origins, durability=durability,
                                tls_cert=tls_cert, tls_key=tls_key, allowed_hosts=allowed_hosts)
        options.allowed_hosts = names_served(options, public_url)
        asyncio.run(_serve(data_dir, app, options, quiet, companion, public_url))
        return 0
    except InsecureKeyFile as exc:
        print(f"collab serve: refusing to start: {exc}", file=sys.stderr)
        return 1
    except ssl.SSLError as exc:
        print(f"collab serve: cannot use the TLS certificate and key: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"collab serve: cannot listen on {host}:{port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        lock.close()


def stop_server(data_dir: Path, timeout_s: float = 10.0) -> int:
    import time

    data_dir = data_dir.expanduser().resolve()
    found = read_discovery(data_dir)
    if found is None:
        print(f"collab serve --stop: no backend is running for {data_dir}", file=sys.stderr)
        return 1
    os.kill(found.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if read_discovery(data_dir) is None:
            print(f"stopped the backend of {data_dir} (pid {found.pid})")
            return 0
        time.sleep(0.05)
    print(f"collab serve --stop: pid {found.pid} did not stop within {timeout_s:.0f} s", file=sys.stderr)
    return 1


def add_serve_arguments(parser: "argparse.ArgumentParser") -> None:
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to bind (default 127.0.0.1: this machine only; 0.0.0.0: every address, "
                             "to serve teammates on the network)")
    parser.add_argument("--port", type=int, default=0, help="TCP port (default: any free port; see the discovery file)")
    parser.add_argument("--stop", action="store_true", help="stop the backend running for the data dir")
    parser.add_argument("--allow-origin", action="append", default=[], metavar="ORIGIN",
                        help="let a browser page from ORIGIN connect (refused by default)")
    parser.add_argument("--tls-cert", type=Path, default=None, metavar="FILE",
                        help="serve https/wss with this certificate (PEM chain); needs --tls-key")
    parser.add_argument("--tls-key", type=Path, default=None, metavar="FILE", help="the certificate's private key (PEM)")
    parser.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                        help="another name this server is reached by (a DNS name pointing here); "
                             "requests naming any other host are refused")
    parser.add_argument("--public-url", default=None, metavar="URL",
                        help="the URL teammates use, when it is not this machine's address "
                             "(a DNS name, a port forward); printed by `collab invite`")
    parser.add_argument("--durability", choices=["normal", "full"], default="normal",
                        help="full: fsync every commit (survives power loss, slower)")
    parser.add_argument("--functions", default=None, help=argparse.SUPPRESS)  # tests: another app package
    parser.add_argument("--quiet", action="store_true", help="no startup line")


def serve_from_args(args: "argparse.Namespace", data_dir: Path, companion: StartCompanion | None = None) -> int:
    if args.stop:
        return stop_server(data_dir)
    return run_server(
        data_dir, host=args.host, port=args.port, functions=args.functions,
        allowed_origins=tuple(args.allow_origin), durability=args.durability, quiet=args.quiet,
        companion=companion, tls_cert=args.tls_cert, tls_key=args.tls_key,
        allowed_hosts=tuple(args.allow_host), public_url=args.public_url,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m collab.backend", description="Run the embedded collab backend.")
    parser.add_argument("--data-dir", required=True, type=Path)
    add_serve_arguments(parser)
    args = parser.parse_args(argv)
    return serve_from_args(args, args.data_dir)
