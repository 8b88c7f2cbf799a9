"""The one error path: message on stderr, contract exit status, no traceback, never the token."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.emulator.seeds import Code24Seed
from tests.emulator.state import EmulatorState
from tests.support.cli import REPO_CONFIG, RunCli
from tests.support.http_servers import refused_port

TOKEN = "tok_SECRET_never_print_me_0123456789"


def test_help_lists_every_contract_command(run_cli: RunCli) -> None:
    result = run_cli("--help", env={"COLUMNS": "120"})
    assert result.exit_code == 0
    commands = "namespace bind unbind workers deploy probe serve doctor config apply secret"
    for command in commands.split():
        assert f" {command} " in result.stdout, command


def test_missing_token_is_exit_2_naming_the_variable(run_cli: RunCli) -> None:
    result = run_cli("namespace", "list", env={"CLOUDFLARE_ACCOUNT_ID": "acc"})
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.startswith("error: CLOUDFLARE_API_TOKEN is not set\n")


def test_missing_account_is_exit_2(run_cli: RunCli) -> None:
    result = run_cli("namespace", "list", env={"CLOUDFLARE_API_TOKEN": TOKEN})
    assert result.exit_code == 2
    assert "CLOUDFLARE_ACCOUNT_ID" in result.stderr
    assert TOKEN not in result.output


@pytest.fixture
def unreachable_api() -> Iterator[str]:
    """An API base URL on 127.0.0.1 that refuses connections."""
    with refused_port() as port:
        yield f"http://127.0.0.1:{port}/client/v4"


def test_unreachable_api_is_exit_3_without_the_token(run_cli: RunCli, unreachable_api: str) -> None:
    env = {
        "CLOUDFLARE_API_TOKEN": TOKEN,
        "CLOUDFLARE_ACCOUNT_ID": "acc",
        "CLOUDFLARE_BASE_URL": unreachable_api,
    }
    for args in (
        ["namespace", "list"],
        ["namespace", "list", "--json"],
        ["-vv", "namespace", "get"],
    ):
        result = run_cli(*args, env=env)
        assert result.exit_code == 3, args
        if "--json" in args:
            error = json.loads(result.stdout)["error"]
            assert (error["code"], error["exit_status"]) == ("network", 3)
        else:
            assert result.stdout == ""
        assert "cannot reach the Cloudflare API" in result.stderr
        assert f"hint: check CLOUDFLARE_BASE_URL ({unreachable_api!r}), then your network" in (
            result.stderr
        )
        assert TOKEN not in result.output


def test_debug_traceback_never_shows_the_token(unreachable_api: str) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "CLOUDFLARE_API_TOKEN": TOKEN,
        "CLOUDFLARE_ACCOUNT_ID": "acc",
        "CLOUDFLARE_BASE_URL": unreachable_api,
        "CODE24_DEBUG": "1",
        "CODE24_CONFIG": str(REPO_CONFIG),
        # No fake clock in a subprocess: a deadline shorter than the first backoff (0.125 s)
        # means the refused connection is not retried after a real sleep.
        "CODE24_API_TIMEOUT": "0.1",
    }
    proc = subprocess.run(
        [sys.executable, "-m", "code24ctl", "-vv", "namespace", "list"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 3
    assert "Traceback (most recent call last)" in proc.stderr
    assert TOKEN not in proc.stdout + proc.stderr


def test_local_env_is_refused_by_cloudflare_commands(run_cli: RunCli) -> None:
    result = run_cli("namespace", "create", "--env", "local", env={"CLOUDFLARE_API_TOKEN": TOKEN})
    assert result.exit_code == 2
    assert "environment 'local' (from --env) is local" in result.stderr
    assert "choose one of: staging, production" in result.stderr


def test_token_with_a_stray_character_is_exit_2(run_cli: RunCli) -> None:
    pasted = "tok_SECRET_abc\u200b"
    result = run_cli(
        "namespace", "list", env={"CLOUDFLARE_API_TOKEN": pasted, "CLOUDFLARE_ACCOUNT_ID": "acc"}
    )
    assert result.exit_code == 2
    assert "CLOUDFLARE_API_TOKEN contains a space, a control or a non-ASCII character" in (
        result.stderr
    )
    assert "tok_SECRET_abc" not in result.output


def test_very_verbose_api_errors_show_no_traceback(run_cli: RunCli, cf_env: dict[str, str]) -> None:
    result = run_cli(
        "-vv", "namespace", "list", env={**cf_env, "CLOUDFLARE_API_TOKEN": "tok_wrong_SECRET"}
    )
    assert result.exit_code == 3
    assert "HTTP Request: GET" in result.stderr
    assert "Traceback" not in result.stderr
    assert "tok_wrong_SECRET" not in result.output


def test_very_verbose_secret_put_never_shows_the_value(
    run_cli: RunCli, cf_env: dict[str, str], cf_state: EmulatorState, cf_seed: Code24Seed
) -> None:
    cf_state.add_namespace(cf_seed.account_id, "code24-workers-staging")
    cf_state.add_namespace_script(
        cf_seed.account_id,
        "code24-workers-staging",
        "developer-worker",
        {"index.js": (b"export default {}", "application/javascript+module")},
        "index.js",
    )
    value = "sk-SECRET-value-0987654321"
    result = run_cli(
        "-vv", "secret", "put", "developer-worker", "OPENAI_API_KEY", env=cf_env, input=value
    )
    assert result.exit_code == 0, result.stderr
    assert "HTTP Request: PUT" in result.stderr
    assert value not in result.output
    assert cf_seed.user_token not in result.output


def test_an_unwritable_wrangler_toml_is_exit_2_after_the_dry_run(
    tmp_path: Path,
    run_cli: RunCli,
    cf_env: dict[str, str],
    cf_state: EmulatorState,
    cf_seed: Code24Seed,
) -> None:
    cf_state.add_namespace(cf_seed.account_id, "code24-workers-staging")
    target = tmp_path / "missing-dir" / "wrangler.toml"
    result = run_cli(
        "deploy", "--dry-run", "--wrangler-toml", str(target), "--env", "staging", env=cf_env
    )
    assert result.exit_code == 2
    assert f"error: cannot write {target}: folder {target.parent} does not exist" in result.stderr
    assert "nothing was deployed" in result.stderr
    assert "Traceback" not in result.stderr
