"""What every real transport shares: the one destination-checked connect, TLS,
the idle-connection check and the one bounded body read.

``connect`` resolves a host through the ``DestinationPolicy`` and connects only
to an address it allows (the check and the connection use the same address: no
DNS rebinding). Every wait is bounded by the request deadline
(``sinkhttp.deadline``). Errors are ``streamsink.errors``' transport tree.
"""

from __future__ import annotations

import select
import socket
import ssl
from collections.abc import Iterable

import httpx

from streamsink.errors import ConnectError, ConnectTimeout, TransportError
from streamsink.sinkhttp.deadline import bounded
from streamsink.sinkhttp.netguard import DestinationPolicy


def connect(
    policy: DestinationPolicy | None, host: str, port: int, timeout: float | None
) -> socket.socket:
    """A TCP connection (TCP_NODELAY) to the first allowed address of ``host``
    that answers; ``DestinationRefused`` when none is allowed."""
    timeout = bounded(timeout, ConnectTimeout)
    if policy is None:
        addresses = [host]
    else:
        try:
            addresses = policy.resolve(host, port)
        except OSError as exc:
            raise ConnectError(f"cannot resolve {host}: {exc}") from exc
    last: Exception | None = None
    for address in addresses:
        try:
            sock = socket.create_connection((address, port), timeout)
        except TimeoutError as exc:
            last = ConnectTimeout(str(exc))
            last.__cause__ = exc
            continue
        except OSError as exc:
            last = ConnectError(str(exc))
            last.__cause__ = exc
            continue
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock
    assert last is not None
    raise last


def start_tls(
    sock: socket.socket, context: ssl.SSLContext, server_hostname: str | None, timeout: float | None
) -> ssl.SSLSocket:
    """TLS over ``sock`` (closed on failure); certificate errors are ``ConnectError``."""
    try:
        sock.settimeout(bounded(timeout, ConnectTimeout))
        return context.wrap_socket(sock, server_hostname=server_hostname)
    except TimeoutError as exc:
        sock.close()
        raise ConnectTimeout(str(exc)) from exc
    except OSError as exc:  # ssl.SSLError (certificate, handshake) included
        sock.close()
        raise ConnectError(str(exc)) from exc
    except BaseException:
        sock.close()
        raise


def readable(sock: socket.socket) -> bool:
    """Data (or the end) waiting on an idle connection, as httpcore checks it;
    plus bytes TLS already decrypted."""
    if isinstance(sock, ssl.SSLSocket) and sock.pending():
        return True
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLIN)
    return bool(poller.poll(0))


def read_bounded(chunks: Iterable[bytes], limit: int) -> tuple[bytes, bool]:
    """At most ``limit`` bytes of ``chunks`` and whether reading ended without an
    error; a broken, undecodable or dripping body (cut at the request deadline)
    only shortens what was read: the status line is what counts."""
    out: list[bytes] = []
    size = 0
    complete = True
    try:
        for chunk in chunks:
            out.append(chunk)
            size += len(chunk)
            if size >= limit:
                break  # the rest is not read
    except (TransportError, httpx.HTTPError, ValueError):
        complete = False
    return b"".join(out)[:limit], complete
