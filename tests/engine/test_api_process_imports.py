"""The API process does not load the delivery side: importing the app pulls in
no batch path, engine, sink kind or HTTP client to sinks (``sink_delivery``
resets a sink's retry state through ``storage.sinks``, not ``delivery.batch``).
(V8 is loaded by the ``simulate`` route, which runs handlers in the API.)"""

from __future__ import annotations

import json
import subprocess
import sys

DELIVERY_SIDE = (
    "streamsink.delivery.batch",
    "streamsink.delivery.engine",
    "streamsink.delivery.job",
    "streamsink.delivery.kinds",
    "streamsink.delivery.worker",
    "streamsink.sinkhttp.client",
    "streamsink.sinkhttp.export",
    "httpx",
)


def test_importing_the_app_loads_no_delivery_side_module() -> None:
    code = (
        "import json, sys, streamsink.api.app\n"
        f"print(json.dumps([m for m in {DELIVERY_SIDE!r} if m in sys.modules]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
