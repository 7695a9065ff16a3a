"""Whether a server can listen where it is asked to, and may (a shared link or another machine's reach needs a
login), said in one sentence before it starts."""

from __future__ import annotations

import errno
import socket

from studio.errors import StudioError


def check_port(host: str, port: int) -> None:
    """StudioError naming the address when `host`:`port` cannot be had (in use, not this machine's ...).
    Binds as uvicorn does: IPv6 when the host has a colon, IPv4 otherwise, with SO_REUSEADDR."""
    address = host.strip().strip("[]")
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((address, port))
        except OSError as err:
            why = "it is in use" if err.errno == errno.EADDRINUSE else (err.strerror or str(err)).lower()
            raise StudioError(f"Cannot listen on {host} port {port}: {why} (pick another with --port).") from None


def loopback(host: str) -> bool:
    """Whether `host` is reachable from this machine only."""
    return host.strip().lower() in ("localhost", "::1", "[::1]") or host.strip().startswith("127.")


def check_listening(host: str, port: int, share: bool, with_logins: bool) -> None:
    """StudioError when the studio would be open to others without a login, or cannot have `host`:`port`."""
    if share and not with_logins:
        raise StudioError("A shared link is public: add --auth USER:PASS (or --auth-file, or $STUDIO_AUTH) so that "
                          "it needs a login.")
    if not loopback(host) and not with_logins:
        raise StudioError(f"Listening on {host} lets other machines reach the studio: add --auth USER:PASS (or "
                          "--auth-file, or $STUDIO_AUTH) so that it needs a login.")
    check_port(host, port)
