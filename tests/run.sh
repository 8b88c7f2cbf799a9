#!/usr/bin/env bash
# The whole test suite, from a clean clone: installs what the tests need, then lints, type-checks
# and runs every test, plus the CLI's smoke tests at the lowest dependency versions allowed
# (tests/floor.sh). This is the README's test command, and .ci/run calls exactly this.
#
#   bash tests/run.sh [extra pytest args]
#
# Needs: python3 (3.11+) with venv, node 20+ and npm. Nothing is skipped: a missing piece fails.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

fail() { echo "tests/run.sh: $*" >&2; exit 1; }

command -v python3 >/dev/null || fail "python3 not found (install Python 3.11+)"
python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' || fail "Python 3.11+ is required"
command -v node >/dev/null || fail "node not found: the JavaScript dispatcher is tested in workerd (install Node.js 20+)"
command -v npm >/dev/null || fail "npm not found (install npm with Node.js)"

venv="${CODE24_VENV:-$repo/.venv}"
if [ ! -x "$venv/bin/python" ]; then
  echo "==> creating $venv" >&2
  python3 -m venv "$venv"
fi
echo "==> installing code24ctl with its test extras" >&2
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -e ".[test]"

echo "==> installing the pinned Node packages (miniflare/workerd) for the dispatcher tests" >&2
npm ci --prefix tests/js --no-audit --no-fund --loglevel=error

echo "==> ruff" >&2
"$venv/bin/ruff" check code24ctl tests benchmarks
"$venv/bin/ruff" format --check code24ctl tests benchmarks
echo "==> mypy (strict)" >&2
"$venv/bin/mypy"

echo "==> the CLI at its dependency floors (tests/floor.sh)" >&2
bash tests/floor.sh

echo "==> pytest" >&2
exec "$venv/bin/python" -m pytest "$@"
