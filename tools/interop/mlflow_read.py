"""Read an MLflow experiment's traces with MLflow's own Python client and print
them as JSON (run by the MLflow venv's python: ``mlflow_read.py URI EXPERIMENT_ID``).

Out: ``[{traceId, state, tokenUsage, spans: [{spanId, parentId, name, spanType,
start, end, status, model, tokenUsage}]}]``; IDs as OTLP hex.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from mlflow import MlflowClient


def _search(client: MlflowClient, experiment_id: str) -> list[Any]:
    try:
        return list(client.search_traces(locations=[experiment_id], max_results=500))
    except TypeError:  # MLflow before 3.3 named the argument experiment_ids
        return list(client.search_traces(experiment_ids=[experiment_id], max_results=500))


def main(uri: str, experiment_id: str) -> None:
    client = MlflowClient(tracking_uri=uri)
    out = []
    for trace in _search(client, experiment_id):
        info = trace.info
        spans = []
        for span in trace.data.spans:
            attrs = span.attributes
            spans.append(
                {
                    "spanId": span.span_id,
                    "parentId": span.parent_id,
                    "name": span.name,
                    "spanType": span.span_type,
                    "start": span.start_time_ns,
                    "end": span.end_time_ns,
                    "status": span.status.status_code.value,
                    "model": attrs.get("mlflow.llm.model"),
                    "tokenUsage": attrs.get("mlflow.chat.tokenUsage"),
                }
            )
        out.append(
            {
                "traceId": info.trace_id.removeprefix("tr-"),
                "state": str(info.state.value if hasattr(info.state, "value") else info.state),
                "tokenUsage": getattr(info, "token_usage", None),
                "spans": spans,
            }
        )
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
