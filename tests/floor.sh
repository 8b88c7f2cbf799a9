#!/usr/bin/env bash
# The lowest-versions smoke run: installs the lowest version each direct dependency in
# pyproject.toml allows (its ">=" floor, as "name==floor" constraints; what they pull in
# resolves as usual) into .venv-floor, then runs the CLI's smoke tests there. A floor that
# does not work fails here, loudly, instead of on a user's machine.
#
#   bash tests/floor.sh
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

venv="${CODE24_FLOOR_VENV:-$repo/.venv-floor}"
constraints="$venv/floors.txt"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"

python3 - "$constraints" <<'PY'
import re
import sys
import tomllib

with open("pyproject.toml", "rb") as file:
    dependencies = tomllib.load(file)["project"]["dependencies"]
lines = []
for requirement in dependencies:
    name = re.match(r"[A-Za-z0-9_.-]+", requirement)
    floor = re.search(r">=\s*([^,;\s]+)", requirement)
    if name is None or floor is None:
        sys.exit(f"tests/floor.sh: no '>=' floor in the dependency {requirement!r}")
    lines.append(f"{name.group(0)}=={floor.group(1)}\n")
with open(sys.argv[1], "w", encoding="utf-8") as out:
    out.writelines(lines)
PY

echo "==> installing code24ctl at its dependency floors ($(tr '\n' ' ' < "$constraints"))" >&2
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -c "$constraints" -e . \
  pytest pytest-timeout pytest-xdist starlette

echo "==> smoke tests at the floors" >&2
"$venv/bin/code24ctl" --help >/dev/null
exec "$venv/bin/python" -m pytest -q -p no:cacheprovider \
  tests/cli/test_workers.py tests/cli/test_error_reporting.py tests/cli/test_json_documents.py \
  tests/cli/test_global_options_and_ergonomics.py
