"""An operator's first week (#22): every case run as a subprocess, without a terminal.

Exit statuses that follow the README's table, no traceback for any bad port or path,
``config validate`` that finds everything at once, hints that name their source, prompts that
name what breaks, and the wrangler habits.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.emulator.seeds import Code24Seed
from tests.emulator.state import EmulatorState
from tests.support.cli import run_subprocess
from tests.support.staging import NAMESPACE, write_config, writes


@pytest.fixture
def namespace(cf_state: EmulatorState, cf_seed: Code24Seed) -> str:
    cf_state.add_namespace(cf_seed.account_id, NAMESPACE)
    return NAMESPACE


# --------------------------------------------------------------------------------------------
# Local `path:` problems are the user's to fix: exit 2, never 3 (the API's)


def _brand_at(tmp_path: Path, path: str) -> Path:
    def local(data: dict[str, Any]) -> None:
        data["workers"]["brand-worker"] = {"path": path}

    return write_config(tmp_path, local)


@pytest.mark.parametrize("dry_run", [True, False], ids=["dry-run", "write"])
def test_a_missing_folder_is_exit_2(
    tmp_path: Path, cf_env: dict[str, str], cf_state: EmulatorState, namespace: str, dry_run: bool
) -> None:
    config = _brand_at(tmp_path, "nowhere")
    args = ["bind", "--env", "staging", "brand-worker", "--config", str(config)]
    result = run_subprocess(*args, *(["--dry-run"] if dry_run else []), env=cf_env)
    assert result.exit_code == 2, result.stderr
    assert "path nowhere: no such file or folder" in result.stderr
    assert "Traceback" not in result.stderr
    assert writes(cf_state) == []


def test_an_empty_folder_is_exit_2(tmp_path: Path, cf_env: dict[str, str], namespace: str) -> None:
    (tmp_path / "brand").mkdir()
    config = _brand_at(tmp_path, "brand")
    result = run_subprocess(
        "bind", "--env", "staging", "brand-worker", "--dry-run", "--config", str(config), env=cf_env
    )
    assert result.exit_code == 2, result.stderr
    assert "path brand: the folder holds no module files" in result.stderr


def test_a_typescript_file_is_exit_2_with_a_build_it_first_hint(
    tmp_path: Path, cf_env: dict[str, str], namespace: str
) -> None:
    (tmp_path / "brand.ts").write_text("export default { fetch() { return new Response('') } }")
    config = _brand_at(tmp_path, "brand.ts")
    result = run_subprocess(
        "bind", "--env", "staging", "brand-worker", "--dry-run", "--config", str(config), env=cf_env
    )
    assert result.exit_code == 2, result.stderr
    assert "brand.ts is TypeScript, which Workers do not run as it is" in result.stderr
    assert "hint: build it first" in result.stderr


def test_a_folder_of_typescript_sources_says_build_it_first(
    tmp_path: Path, cf_env: dict[str, str], namespace: str
) -> None:
    (tmp_path / "brand" / "src").mkdir(parents=True)
    (tmp_path / "brand" / "src" / "index.ts").write_text("export default {}")
    config = _brand_at(tmp_path, "brand")
    result = run_subprocess(
        "bind", "--env", "staging", "--json", "brand-worker", "--dry-run", "--config", str(config),
        env=cf_env,
    )  # fmt: skip
    assert result.exit_code == 2, result.stderr
    (row,) = json.loads(result.stdout)["workers"]
    assert row["error"] == "path brand: the folder holds no module files (only TypeScript sources)"
    assert row["hint"].startswith("build it first")
