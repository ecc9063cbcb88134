"""ASGI middleware: content encoding, idempotency, ingest fast lane."""
