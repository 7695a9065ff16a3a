"""Whether a server can listen where it is asked to, said in one sentence before it starts."""

from __future__ import annotations

import errno
import socket

from studio.errors import StudioError


def check_port(host: str, port: int) -> None:
    """StudioError naming the address when `host`:`port` cannot be had (in use, no such address ...)."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM)[0]
    except (OSError, UnicodeError) as err:
        raise StudioError(f"Cannot listen on {host} port {port}: the address is not one of this machine's "
                          f"({err}).") from None
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers themselves bind
        try:
            probe.bind(address)
        except OSError as err:
            why = "it is in use" if err.errno == errno.EADDRINUSE else (err.strerror or str(err)).lower()
            raise StudioError(f"Cannot listen on {host} port {port}: {why} (pick another with --port).") from None
