"""The api package's shape: routers do not import each other (shared pieces
live in api/responses.py, api/params.py and api/hooks.py)."""

from __future__ import annotations

import ast
from pathlib import Path

import streamsink.api.routes as routes_pkg

ROUTES = Path(routes_pkg.__file__).parent


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_no_router_imports_another() -> None:
    modules = sorted(ROUTES.glob("*.py"))
    assert len(modules) > 5
    for path in modules:
        others = {
            f"streamsink.api.routes.{p.stem}" for p in modules if p != path and p.stem != "__init__"
        }
        assert not (_imports(path) & others), f"{path.name} imports another router"
