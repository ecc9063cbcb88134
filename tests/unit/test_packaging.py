"""What ships: the wheel holds ``streamsink/`` only; the bench, the fault suite
and the dev stacks live in ``tools/`` and nothing shipped imports them."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_setuptools_ships_streamsink_only() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert config["tool"]["setuptools"]["packages"]["find"]["include"] == ["streamsink*"]


def test_no_dev_tool_inside_the_package() -> None:
    names = {p.name for p in (ROOT / "streamsink").rglob("*")}
    assert not {"bench", "faults", "devstack.py", "interop"} & names
    assert (ROOT / "tools" / "bench").is_dir() and (ROOT / "tools" / "faults").is_dir()


def test_shipped_code_never_imports_tools() -> None:
    offenders = []
    for path in (ROOT / "streamsink").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{path}: {n}" for n in names if n.split(".")[0] in ("tools", "tests")]
    assert not offenders


def test_package_data_covers_every_file_the_code_reads() -> None:
    """Each non-Python file in ``streamsink/`` (Lua scripts, handler templates,
    static pages) matches a ``package-data`` glob, so the wheel ships it."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    package = ROOT / "streamsink"
    shipped: set[Path] = set()
    for pattern in config["tool"]["setuptools"]["package-data"]["streamsink"]:
        shipped.update(p for p in package.glob(pattern) if p.is_file())
    data = {
        p
        for p in package.rglob("*")
        if p.is_file() and p.suffix not in (".py", ".pyc") and "__pycache__" not in p.parts
    }
    assert any(p.suffix == ".lua" for p in data)
    assert sorted(str(p.relative_to(package)) for p in data - shipped) == []
