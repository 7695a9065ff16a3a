"""Whether a server can listen where it is asked to, said in one sentence before it starts."""

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
