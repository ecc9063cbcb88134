"""Sensitive header values never reach the logs: a real worker delivers to a
sink with an Authorization header through retries and a permanent failure,
at DEBUG level, and its whole log is searched for the secret."""

from __future__ import annotations

from tests.engine.conftest import (  # noqa: F401 - fixtures
    Api,
    Workers,
    api,
    receiver_factory,
    workers,
)
from tests.helpers.receiver_server import Answer

SECRET = "s3cr3t-token-4711"


def test_authorization_value_never_logged(api: Api, receiver_factory, workers: Workers) -> None:  # noqa: F811
    receiver = receiver_factory([Answer(503), Answer(200)], default=Answer(400, "bad"))
    proc = _debug_worker(workers)
    stream = api.stream()
    headers = {"Authorization": f"Bearer {SECRET}", "X-Api-Key": SECRET}
    sink = api.sink(
        stream, receiver.traces_url, config={"url": receiver.traces_url, "headers": headers}
    )
    api.post_seqs(stream, range(3))
    receiver.wait_accepted(3, timeout=20)
    api.post_seqs(stream, range(3, 6))
    api.wait_status(stream, sink["id"], "disabled", timeout=20)
    assert receiver.requests[0].headers["authorization"] == f"Bearer {SECRET}"  # it was sent
    proc.terminate()
    proc.wait(15)
    logs = workers.logs()
    assert "sink" in logs.lower()  # the log is not empty: deliveries were logged
    assert SECRET not in logs
    attempts = api.attempts(stream, sink["id"])
    assert SECRET not in str(attempts) and SECRET not in str(api.get_sink(stream, sink["id"]))


def _debug_worker(pool: Workers):  # type: ignore[no-untyped-def]
    import os
    import subprocess
    import sys

    from tests.engine.conftest import ROOT, WORKER_ENV

    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMSINK_")}
    env |= WORKER_ENV | {"STREAMSINK_REDIS_URL": pool.redis_url, "NO_PROXY": "127.0.0.1"}
    log = open(pool.log_dir / "worker-debug.log", "wb")  # noqa: SIM115
    cmd = [sys.executable, "-m", "streamsink", "--log-level", "DEBUG", "worker"]
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    pool.procs.append(proc)
    pool.wait_ready(proc)
    return proc


def test_banner_shows_where_the_token_is_not_the_token(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """`streamsink api` with an embedded Redis and a generated token: its output
    (what a log captures) names the token file and a prefix, never the token."""
    import os
    import subprocess
    import sys

    import httpx

    from tests.engine.conftest import ROOT
    from tools.devstack import free_port, wait_until

    data, port = tmp_path / "data", free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMSINK_")}
    cmd = [sys.executable, "-m", "streamsink", "api", "--port", str(port), "--data-dir", str(data)]
    out = open(tmp_path / "out.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    out.close()
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: httpx.get(url + "/health", timeout=2).status_code == 200, 30, 0.1)
        token = (data / "auth-token").read_text().strip()
        headers = {"Authorization": f"Bearer {token}"}
        assert httpx.get(url + "/api/v1/stream", headers=headers, timeout=5).status_code == 200
    finally:
        proc.terminate()
        proc.wait(15)
    logs = (tmp_path / "out.log").read_text()
    assert "streamsink serving on" in logs
    assert token not in logs and token[8:20] not in logs
    assert f"{token[:6]}…" in logs
    assert f"cat {data / 'auth-token'}" in logs
