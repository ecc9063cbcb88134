"""The real receivers, each from its own venv, on 127.0.0.1 only, with every
phone-home switched off, and how to read spans back through their own APIs.

Readback shape (both receivers): ``{span_id: {traceId, parentId, name, start,
end, model, tokens}}`` and ``{trace_id: (prompt, completion)}`` token totals.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
from procs import Proc, clean_env, free_port

HERE = Path(__file__).resolve().parent
Spans = dict[str, dict[str, Any]]
Totals = dict[str, tuple[int, int]]

#: Off for every receiver: generic opt-outs most Python tools honour.
NO_PHONE_HOME = {"DO_NOT_TRACK": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


class Receiver:
    name = ""
    time_tolerance_ns = 0  # how far a stored time may be from the sent one

    def __init__(self, venv: Path, work: Path) -> None:
        self.venv = venv
        self.work = work / self.name
        self.work.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc: Proc | None = None
        self.http = httpx.Client(base_url=self.base, timeout=30.0, trust_env=False)

    @property
    def python(self) -> str:
        return str(self.venv / "bin" / "python")

    def start(self) -> None:
        raise NotImplementedError

    def sink(self, case: str) -> tuple[str, dict[str, str]]:
        """(OTLP traces URL, headers) for a sink delivering case ``case``."""
        raise NotImplementedError

    def read(self, case: str, trace_ids: set[str]) -> tuple[Spans, Totals]:
        raise NotImplementedError

    def stop(self) -> None:
        self.http.close()
        if self.proc is not None:
            self.proc.stop()


class Mlflow(Receiver):
    """``mlflow server`` on a sqlite store; spans go to ``/v1/traces`` with the
    ``x-mlflow-experiment-id`` header (one experiment per case); read back with
    ``MlflowClient.search_traces`` (tools/interop/mlflow_read.py in MLflow's venv)."""

    name = "mlflow"

    def env(self) -> dict[str, str]:
        return clean_env(
            **NO_PHONE_HOME,
            HOME=str(self.work),
            MLFLOW_DISABLE_TELEMETRY="true",
            # Empty: no model price list fetched from the internet (the bundled one is used).
            MLFLOW_MODEL_CATALOG_URI="",
        )

    def start(self) -> None:
        cmd = [
            self.python, "-m", "mlflow", "server",
            "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1",
            "--backend-store-uri", f"sqlite:///{self.work / 'mlflow.db'}",
            "--default-artifact-root", str(self.work / "artifacts"),
        ]  # fmt: skip
        self.proc = Proc(self.name, cmd, self.env(), self.work)
        self.proc.wait_http(f"{self.base}/health", timeout=240)
        self.experiments: dict[str, str] = {}

    def sink(self, case: str) -> tuple[str, dict[str, str]]:
        r = self.http.post("/api/2.0/mlflow/experiments/create", json={"name": f"interop-{case}"})
        r.raise_for_status()
        self.experiments[case] = r.json()["experiment_id"]
        return f"{self.base}/v1/traces", {"x-mlflow-experiment-id": self.experiments[case]}

    def read(self, case: str, trace_ids: set[str]) -> tuple[Spans, Totals]:
        cmd = [self.python, str(HERE / "mlflow_read.py"), self.base, self.experiments[case]]
        run = subprocess.run(cmd, env=self.env(), capture_output=True, text=True, timeout=120)
        if run.returncode:
            raise RuntimeError(f"mlflow_read failed: {run.stderr[-2000:]}")
        spans: Spans = {}
        totals: Totals = {}
        for trace in json.loads(run.stdout):
            usage = trace.get("tokenUsage") or {}
            totals[trace["traceId"]] = (usage.get("input_tokens", 0), usage.get("output_tokens", 0))
            for s in trace["spans"]:
                u = s.get("tokenUsage") or None
                spans[s["spanId"]] = {
                    "traceId": trace["traceId"],
                    "parentId": s["parentId"],
                    "name": s["name"],
                    "start": s["start"],
                    "end": s["end"],
                    "model": s["model"],
                    "tokens": (u["input_tokens"], u["output_tokens"]) if u else None,
                }
        return spans, totals


class Phoenix(Receiver):
    """``phoenix serve`` (sqlite under its working dir). Its OTLP/HTTP receiver
    takes protobuf only (JSON gets 415). Read back through its REST API:
    ``/v1/projects``, then each project's ``/spans`` and ``/traces``."""

    name = "phoenix"
    time_tolerance_ns = 500  # Phoenix stores times as microsecond datetimes (rounded)

    def env(self) -> dict[str, str]:
        return clean_env(
            **NO_PHONE_HOME,
            HOME=str(self.work),
            PHOENIX_HOST="127.0.0.1",
            PHOENIX_PORT=str(self.port),
            # Phoenix binds gRPC to [::]:PHOENIX_GRPC_PORT whatever PHOENIX_HOST says;
            # phoenix_server.py rewrites that bind to 127.0.0.1, on a free port.
            PHOENIX_GRPC_PORT=str(free_port()),
            PHOENIX_WORKING_DIR=str(self.work),
            PHOENIX_TELEMETRY_ENABLED="false",
            PHOENIX_ALLOW_EXTERNAL_RESOURCES="false",  # no downloads (WASM sandbox, fonts)
            PHOENIX_ALLOWED_SANDBOX_PROVIDERS="NONE",
        )

    def start(self) -> None:
        cmd = [self.python, str(HERE / "phoenix_server.py"), "serve"]
        self.proc = Proc(self.name, cmd, self.env(), self.work)
        self.proc.wait_http(f"{self.base}/healthz", timeout=300)

    def sink(self, case: str) -> tuple[str, dict[str, str]]:
        return f"{self.base}/v1/traces", {}

    def _pages(self, path: str, **params: Any) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        cursor = None
        for _ in range(50):  # bounded: 50 pages of 1000
            query = {"limit": 1000, **params, **({"cursor": cursor} if cursor else {})}
            r = self.http.get(path, params=query)
            if r.status_code == 404:  # no span yet: the project does not exist
                return out
            r.raise_for_status()
            body = r.json()
            out.extend(body["data"])
            cursor = body.get("next_cursor")
            if not cursor:
                break
        return out

    def read(self, case: str, trace_ids: set[str]) -> tuple[Spans, Totals]:
        ids = sorted(trace_ids)
        spans: Spans = {}
        totals: Totals = {}
        # A span's project is its resource's openinference.project.name, else "default".
        for project in self._pages("/v1/projects"):
            base = f"/v1/projects/{project['id']}"
            spans |= self._spans(base, ids, project["name"])
            for t in self._pages(f"{base}/traces"):
                if t["trace_id"] in trace_ids:
                    totals[t["trace_id"]] = (t["token_count_prompt"], t["token_count_completion"])
        return spans, totals

    def _spans(self, base: str, ids: list[str], project: str) -> Spans:
        spans: Spans = {}
        for s in self._pages(f"{base}/spans", trace_id=ids):
            attrs = s.get("attributes") or {}
            prompt = attrs.get("llm.token_count.prompt")
            completion = attrs.get("llm.token_count.completion")
            spans[s["context"]["span_id"]] = {
                "traceId": s["context"]["trace_id"],
                "parentId": s.get("parent_id"),
                "name": s["name"],
                "start": _ns(s["start_time"]),
                "end": _ns(s["end_time"]),
                "model": attrs.get("llm.model_name"),
                "tokens": (prompt, completion) if prompt is not None else None,
                "project": project,
            }
        return spans


def _ns(iso: str) -> int:
    from cases import iso_ns

    return iso_ns(iso.replace("+00:00", "Z"))


RECEIVERS: dict[str, type[Receiver]] = {"mlflow": Mlflow, "phoenix": Phoenix}

if __name__ == "__main__":
    sys.exit("run tools/interop/run.py")
