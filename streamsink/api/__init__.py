"""The REST API (FastAPI): one module of routes per resource."""
