"""Fixtures for delivery tests: a programmable sink and a delivery client."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from streamsink.sinkhttp.client import DeliveryClient
from tests.helpers.receiver_server import ReceiverServer


@pytest.fixture
def sink() -> Iterator[ReceiverServer]:
    with ReceiverServer() as server:
        yield server


@pytest.fixture
def client() -> Iterator[DeliveryClient]:
    with DeliveryClient(connect_timeout=2.0, read_timeout=2.0, total_timeout=5.0) as c:
        yield c
