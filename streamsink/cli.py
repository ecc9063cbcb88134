"""The ``streamsink`` command: serve, api, worker, transform run."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from streamsink import __version__
from streamsink.settings import Settings


def _settings(args: argparse.Namespace) -> Settings:
    """Environment settings, overridden by the flags that were given."""
    overrides: dict[str, Any] = {
        key: value
        for key in (
            "host",
            "port",
            "data_dir",
            "redis_url",
            "workers",
            "auth_token",
            "api_processes",
        )
        if (value := getattr(args, key, None)) is not None
    }
    return Settings(**overrides)


def _add_common(p: argparse.ArgumentParser, *, server: bool) -> None:
    p.add_argument("--redis-url", help="Redis URL (env STREAMSINK_REDIS_URL)")
    p.add_argument("--data-dir", type=Path, help="data directory (env STREAMSINK_DATA_DIR)")
    if server:
        p.add_argument("--host", help="bind address (default 127.0.0.1)")
        p.add_argument("--port", type=int, help="port (default 8071)")
        p.add_argument("--auth-token", help="bearer token(s), comma-separated")
        p.add_argument("--api-processes", type=int, help="API processes sharing the port")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="streamsink", description=__doc__)
    parser.add_argument("--version", action="version", version=f"streamsink {__version__}")
    parser.add_argument("--log-level", default="INFO", help="logging level (default INFO)")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="API + workers (+ embedded Redis when no URL)")
    _add_common(serve, server=True)
    serve.add_argument("--workers", type=int, help="worker processes (default 1)")

    api = sub.add_parser("api", help="the REST API alone")
    _add_common(api, server=True)

    worker = sub.add_parser("worker", help="a delivery worker (RQ, no fork per job)")
    _add_common(worker, server=False)
    worker.add_argument("--burst", action="store_true", help="exit when the queue is empty")

    transform = sub.add_parser("transform", help="run a handler locally")
    tsub = transform.add_subparsers(dest="transform_command", required=True)
    run = tsub.add_parser("run", help="print the OTLP JSON a handler makes of events")
    run.add_argument("handler", type=Path, help="a .js file defining handler(input)")
    run.add_argument("events", type=Path, help="JSON list of {eventType, payload}")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if args.command == "transform":
        from streamsink.transform.cli import run_transform

        return run_transform(args.handler, args.events)

    from streamsink import serve

    settings = _settings(args)
    if args.command == "serve":
        return serve.serve(settings)
    if args.command == "api":
        return serve.api(settings)
    return serve.worker(settings, burst=args.burst)
