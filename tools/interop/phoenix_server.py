"""Start ``phoenix serve`` with its OTLP/gRPC receiver bound to 127.0.0.1.

Arize Phoenix (up to at least 20.x) binds its gRPC server to ``[::]:PHOENIX_GRPC_PORT``
(hard-coded in phoenix/server/grpc_server.py; PHOENIX_HOST only moves the HTTP
server), i.e. every interface. No setting turns it off short of read-only
mode. This launcher, run by the Phoenix venv's python, rewrites the address of
every gRPC port that process opens to 127.0.0.1 before handing over to
Phoenix's own command line. scripts/interop checks the result from /proc.
"""

from __future__ import annotations

import sys

import grpc.aio

_LOOPBACK = "127.0.0.1"


def _loopback(address: str) -> str:
    port = address.rsplit(":", 1)[-1]
    return f"{_LOOPBACK}:{port}"


def _patch() -> None:
    real_server = grpc.aio.server

    def server(*args: object, **kwargs: object) -> grpc.aio.Server:
        srv = real_server(*args, **kwargs)
        insecure, secure = srv.add_insecure_port, srv.add_secure_port
        srv.add_insecure_port = lambda address: insecure(_loopback(address))  # type: ignore[method-assign]
        srv.add_secure_port = lambda address, creds: secure(_loopback(address), creds)  # type: ignore[method-assign]
        return srv

    grpc.aio.server = server  # type: ignore[assignment]


if __name__ == "__main__":
    _patch()
    from phoenix.server.main import main

    sys.argv = ["phoenix", *sys.argv[1:]]
    sys.exit(main())
