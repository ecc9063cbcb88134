"""``streamsink api --api-processes 2``: two uvicorn processes share the port
and serve the same data (the app keeps no state of its own)."""

from __future__ import annotations

from tools.devstack import Stack


def test_two_api_processes_share_the_port_and_the_data() -> None:
    with Stack(workers=0, env={"STREAMSINK_API_PROCESSES": "2"}) as stack, stack.http() as http:
        for i in range(20):
            r = http.post("/stream", json={"name": f"s{i}", "uid": f"s{i}"})
            assert r.status_code == 201, r.text
        for _ in range(10):  # whichever process answers, it sees every stream
            page = http.get("/stream", params={"limit": 250}).json()
            assert len(page["data"]) == 20
        assert http.get("/stream/s7").json()["name"] == "s7"
