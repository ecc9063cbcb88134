# Sourced by the scripts: create .venv when missing, (re)install the project when
# pyproject.toml changed since the last install. $1 = extras ("" or "test").
# Leaves the caller's working directory alone; ROOT is the repository.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
(
  cd "$ROOT"
  PY="${PYTHON:-python3.11}"
  command -v "$PY" >/dev/null 2>&1 || PY=python3
  if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
  fi
  extras="${1:-}"
  stamp=".venv/.installed${extras:+-$extras}"
  fresh() { [ -f "$1" ] && [ ! pyproject.toml -nt "$1" ]; }
  # An install with the test extras also holds everything the plain one needs.
  if ! fresh "$stamp" && ! { [ -z "$extras" ] && fresh .venv/.installed-test; }; then
    .venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
    .venv/bin/python -m pip install -q -e ".${extras:+[$extras]}"
    touch "$stamp"
  fi
)
export PATH="$ROOT/.venv/bin:$PATH"
