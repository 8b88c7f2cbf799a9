"""Issue 11: global options anywhere, a visible environment, completion, secrets as a noun,
typo help, identifier-safe tables, progress without a terminal, init, friendlier config errors.

Each reproduction from the issue is run through the CLI (Typer's runner or a subprocess)
against the emulator on 127.0.0.1.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from code24ctl.cli import output
from tests.emulator.seeds import MULTI_MODULE_SECRET, Code24Seed
from tests.emulator.state import EmulatorState
from tests.support.builders import rows_of, words
from tests.support.cli import REPO_CONFIG, REPO_ROOT, RunCli
from tests.support.clock import FakeClock
from tests.support.staging import ALIASES, NAMESPACE, write_config, writes

MODULE = {"worker.js": (b"export default {};\n", "application/javascript+module")}
SECRET_VALUE = "s3cr3t-value-NEVER-shown"


@pytest.fixture
def bound(cf_state: EmulatorState, cf_seed: Code24Seed) -> str:
    """The staging namespace holding every configured alias (developer-worker has a secret)."""
    cf_state.add_namespace(cf_seed.account_id, NAMESPACE)
    for alias in ALIASES:
        secrets = {"SESSION_KEY": "k-123456"} if alias == "brand-worker" else None
        cf_state.add_namespace_script(
            cf_seed.account_id, NAMESPACE, alias, MODULE, "worker.js", secrets=secrets
        )
    return NAMESPACE


# --------------------------------------------------------------------------------------------
# 1. global options before or after the command


def test_global_options_before_and_after_the_command_print_the_same_document(
    run_cli: RunCli, cf_env: dict[str, str], cf_state: EmulatorState, cf_seed: Code24Seed
) -> None:
    cf_state.add_namespace(cf_seed.account_id, NAMESPACE)
    after = run_cli("namespace", "list", "-v", "--json", env=cf_env)
    before = run_cli("-v", "--json", "namespace", "list", env=cf_env)
    assert after.exit_code == before.exit_code == 0, after.stderr + before.stderr
    assert after.stdout == before.stdout
    assert json.loads(after.stdout)["namespaces"][0]["name"] == NAMESPACE
    # -v logs the API call either way
    for result in (after, before):
        assert "info: httpx: HTTP Request: GET" in result.stderr


def test_env_and_config_before_the_command(
    run_cli: RunCli, cf_env: dict[str, str], bound: str, tmp_path: Path
) -> None:
    result = run_cli(
        "--env", "staging", "-c", str(REPO_CONFIG), "--json", "workers", env=cf_env, config=None
    )
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert (document["command"], document["environment"]) == ("workers", "staging")
    # the command's own flag wins over the global one
    wins = run_cli("-e", "production", "config", "show", "-e", "staging", "--json", env=cf_env)
    assert json.loads(wins.stdout)["environment"] == "staging"


def test_vv_adds_bodies_and_timings_with_secrets_scrubbed(
    run_cli: RunCli, cf_env: dict[str, str], bound: str
) -> None:
    one = run_cli("secret", "put", "brand-worker", "API_KEY", "-v", env=cf_env, input=SECRET_VALUE)
    two = run_cli("secret", "put", "brand-worker", "API_KEY", "-vv", env=cf_env, input=SECRET_VALUE)
    assert one.exit_code == two.exit_code == 0, one.stderr + two.stderr
    assert "request body" not in one.stderr
    assert "response body" in two.stderr
    assert '"text": "***"' in two.stderr or '"text":"***"' in two.stderr
    assert " ms\n" in two.stderr  # the timing of each call
    for result in (one, two):
        assert SECRET_VALUE not in result.output
        assert cf_env["CLOUDFLARE_API_TOKEN"] not in result.output


def test_no_color_is_accepted_after_the_command(run_cli: RunCli) -> None:
    result = run_cli("config", "validate", "--no-color")
    assert result.exit_code == 0, result.stderr
    assert "\x1b[" not in result.output


# --------------------------------------------------------------------------------------------
# 2. a visible, configurable environment


def test_an_unknown_environment_says_where_it_came_from(run_cli: RunCli) -> None:
    result = run_cli("config", "show", env={"CODE24_ENV": "stagin"})
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: unknown environment 'stagin' (from CODE24_ENV) in {REPO_CONFIG}; "
        "did you mean 'staging'?\n"
        "  hint: choose one of: staging, production, local\n"
    )
    flag = run_cli("config", "show", "--env", "prod")
    assert flag.stderr.startswith("error: unknown environment 'prod' (from --env)")


def _dev_and_production(data: dict[str, Any]) -> None:
    environments = data["environments"]
    data["environments"] = {
        "dev": environments["staging"],
        "production": environments["production"],
    }
    del data["default_env"]


def test_without_default_env_two_remote_environments_are_an_error_listing_them(
    run_cli: RunCli, tmp_path: Path
) -> None:
    config = write_config(tmp_path, _dev_and_production)
    result = run_cli("probe", config=config)
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: no environment chosen, and {config} has 2 non-local ones (dev, production) "
        "and no default_env\n"
        f"  hint: pass --env NAME, export CODE24_ENV=NAME, or set `default_env: NAME` in "
        f"{config}; environments: dev, production\n"
    )


def test_the_only_remote_environment_is_the_default(run_cli: RunCli, tmp_path: Path) -> None:
    def only_production(data: dict[str, Any]) -> None:
        del data["environments"]["staging"]
        del data["default_env"]

    config = write_config(tmp_path, only_production)
    result = run_cli("config", "show", "--json", config=config)
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["environment"] == "production"
    assert document["environment_origin"] == f"the only non-local environment in {config}"


def test_default_env_must_name_an_environment(run_cli: RunCli, tmp_path: Path) -> None:
    config = write_config(tmp_path, lambda data: data.update(default_env="qa"))
    result = run_cli("config", "validate", config=config)
    assert result.exit_code == 2
    assert "default_env: unknown environment 'qa'" in result.stderr


def test_help_shows_the_default_environment_and_its_source(run_cli: RunCli) -> None:
    result = run_cli("workers", "--help", env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "[default: staging, from default_env in " in result.stdout


def test_serve_help_shows_its_own_default_environment(run_cli: RunCli) -> None:
    # serve runs `local` unless told otherwise, whatever the config's default_env says.
    result = run_cli("serve", "--help", env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "[default: $CODE24_ENV, else local]" in result.stdout
    assert "from default_env" not in result.stdout


def test_config_show_env_shows_that_environment_only(run_cli: RunCli) -> None:
    result = run_cli("config", "show", "--env", "production", "--json")
    document = json.loads(result.stdout)
    assert list(document["config"]["environments"]) == ["production"]
    assert document["namespace"] == "code24-workers-production"
    text = run_cli("config", "show", "--env", "production").stdout
    assert "staging:" not in text.split("environments:")[1]


# --------------------------------------------------------------------------------------------
# 3. shell completion


def _complete(words: str, *, shell: str = "bash", cword: int | None = None) -> list[str]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("CODE24_", "CLOUDFLARE_"))},
        "_CODE24CTL_COMPLETE": f"complete_{shell}",
        "COMP_WORDS": words,
        "COMP_CWORD": str(cword if cword is not None else len(words.split())),
        "_TYPER_COMPLETE_ARGS": words,
        "CODE24_CONFIG": str(REPO_CONFIG),
    }
    proc = subprocess.run(
        [sys.executable, "-c", "from code24ctl.cli import main; main()"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO_ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.split()


def test_completion_of_bind_offers_the_aliases() -> None:
    assert _complete("code24ctl bind ") == list(ALIASES)


def test_completion_offers_commands_and_environments() -> None:
    assert {"bind", "namespace", "secret", "workers"} <= set(_complete("code24ctl "))
    assert _complete("code24ctl workers --env ") == ["staging", "production", "local"]
    assert _complete("code24ctl probe --route /elite/d", cword=3) == [
        "/elite/design",
        "/elite/develop",
    ]


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_show_completion_prints_a_script_for_each_shell(shell: str) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("CODE24_", "CLOUDFLARE_"))},
        # name the shell instead of detecting the one running the tests
        "_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1",
    }
    proc = subprocess.run(
        [sys.executable, "-m", "code24ctl", "--show-completion", shell],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO_ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    assert "_CODE24CTL_COMPLETE" in proc.stdout
    assert {"bash": "complete_bash", "zsh": "complete_zsh", "fish": "complete_fish"}[shell] in (
        proc.stdout
    )


# --------------------------------------------------------------------------------------------
# 4. secrets as a noun


def test_secret_list_shows_names_and_types_never_values(
    run_cli: RunCli, cf_env: dict[str, str], bound: str
) -> None:
    result = run_cli("secret", "list", "brand-worker", "--json", env=cf_env)
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == {
        "command": "secret list",
        "environment": "staging",
        "namespace": NAMESPACE,
        "worker": "brand-worker",
        "secrets": [{"name": "SESSION_KEY", "type": "secret_text"}],
        "summary": {"secrets": 1},
    }
    text = run_cli("secret", "list", "brand-worker", env=cf_env)
    assert rows_of(text.stdout) == words("name type", "SESSION_KEY secret_text")
    assert "k-123456" not in text.output + result.output


def test_secret_delete(
    run_cli: RunCli, cf_env: dict[str, str], bound: str, cf_state: EmulatorState
) -> None:
    typo = run_cli("secret", "delete", "brand-worker", "SESION_KEY", env=cf_env)
    assert typo.exit_code == 2
    assert "has no secret 'SESION_KEY'; did you mean 'SESSION_KEY'?" in typo.stderr
    assert writes(cf_state) == []
    done = run_cli("secret", "delete", "brand-worker", "SESSION_KEY", env=cf_env)
    assert done.exit_code == 0, done.stderr
    assert (
        done.stdout
        == f"deleted secret SESSION_KEY from brand-worker in dispatch namespace {NAMESPACE}\n"
    )
    after = run_cli("secret", "list", "brand-worker", "--json", env=cf_env)
    assert json.loads(after.stdout)["secrets"] == []


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("secrets.json", json.dumps({"A_KEY": SECRET_VALUE, "B_KEY": "b-value-2"})),
        (".env", f"# comment\nA_KEY={SECRET_VALUE}\nexport B_KEY='b-value-2'\n"),
    ],
)
def test_secret_put_from_file_sets_many(
    run_cli: RunCli,
    cf_env: dict[str, str],
    bound: str,
    cf_state: EmulatorState,
    tmp_path: Path,
    name: str,
    text: str,
) -> None:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    result = run_cli("secret", "put", "market-research", "--from-file", str(path), env=cf_env)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"set secret A_KEY on market-research in dispatch namespace {NAMESPACE}",
        f"set secret B_KEY on market-research in dispatch namespace {NAMESPACE}",
    ]
    assert SECRET_VALUE not in result.output
    puts = cf_state.requests(method="PUT", path_contains="/secrets")
    assert [request.json["name"] for request in puts] == ["A_KEY", "B_KEY"]


def test_secret_put_typo_is_exit_2_before_any_write(
    run_cli: RunCli, cf_env: dict[str, str], bound: str, cf_state: EmulatorState
) -> None:
    result = run_cli("secret", "put", "develper-worker", "K", env=cf_env, input="v-123")
    assert result.exit_code == 2
    assert result.stderr.startswith(
        f"error: no Worker 'develper-worker' in dispatch namespace {NAMESPACE}; "
        "did you mean 'developer-worker'?\n"
    )
    assert writes(cf_state) == []


def test_workers_shows_the_secrets_each_copy_lacks(
    run_cli: RunCli, cf_env: dict[str, str], bound: str
) -> None:
    result = run_cli("workers", "--json", env=cf_env)
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    lacking = {row["alias"]: row["secrets_missing"] for row in document["workers"]}
    assert lacking["developer-worker"] == [MULTI_MODULE_SECRET]
    assert lacking["brand-worker"] == []
    assert document["summary"]["secrets_missing"] == 1
    text = run_cli("workers", env={**cf_env, "COLUMNS": "200"})
    assert "1 secret(s) still to set: `code24ctl secret put ALIAS NAME --env staging`" in (
        text.stderr
    )


def test_namespace_delete_says_how_many_secrets_go_with_it(
    run_cli: RunCli, cf_env: dict[str, str], bound: str
) -> None:
    result = run_cli("namespace", "delete", NAMESPACE, "--yes", env=cf_env)
    assert result.exit_code == 0, result.stderr
    assert result.stderr == (
        f"dispatch namespace {NAMESPACE} holds 5 Worker(s) and 1 secret(s); "
        "they are deleted with it\n"
        f"warning: {NAMESPACE} is the staging environment's namespace ({REPO_CONFIG})\n"
    )


# --------------------------------------------------------------------------------------------
# 5. names checked, with "did you mean"


def test_namespace_get_typo_suggests_the_nearest_namespace(
    run_cli: RunCli, cf_env: dict[str, str], cf_state: EmulatorState, cf_seed: Code24Seed
) -> None:
    cf_state.add_namespace(cf_seed.account_id, NAMESPACE)
    result = run_cli("namespace", "get", "code24-workers-stagin", env=cf_env)
    assert result.exit_code == 3
    assert result.stderr == (
        "error: dispatch namespace code24-workers-stagin does not exist on this account; "
        f"did you mean '{NAMESPACE}'? (Cloudflare API error 100119)\n"
        "  hint: `code24ctl namespace list` shows the namespaces this account has\n"
    )
    assert "namespace create" not in result.stderr


def test_unbind_typo_is_exit_2_and_deletes_nothing(
    run_cli: RunCli, cf_env: dict[str, str], bound: str, cf_state: EmulatorState
) -> None:
    result = run_cli("unbind", "develper-worker", "--yes", env=cf_env)
    assert result.exit_code == 2
    assert "did you mean 'developer-worker'?" in result.stderr
    assert writes(cf_state) == []


def test_probe_route_typo_suggests_the_prefix(run_cli: RunCli) -> None:
    result = run_cli("probe", "--env", "local", "--route", "/api/competitve")
    assert result.exit_code == 2
    assert "did you mean '/api/competitive'?" in result.stderr


# --------------------------------------------------------------------------------------------
# 6. one JSON shape, and the error document


def test_a_failure_with_json_prints_one_error_document(run_cli: RunCli) -> None:
    result = run_cli("workers", "--json", env={"CODE24_ENV": "stagin"})
    assert result.exit_code == 2
    assert json.loads(result.stdout) == {
        "error": {
            "code": "usage",
            "message": f"unknown environment 'stagin' (from CODE24_ENV) in {REPO_CONFIG}; "
            "did you mean 'staging'?",
            "hint": "choose one of: staging, production, local",
            "exit_status": 2,
            "api_code": None,
            "changes": [],
        }
    }
    bad_option = run_cli("--json", "workers", "--no-such-option")
    assert bad_option.exit_code == 2
    assert json.loads(bad_option.stdout)["error"]["code"] == "usage"


# --------------------------------------------------------------------------------------------
# 7. progress without a terminal


def test_bind_prints_a_line_per_worker_without_a_terminal(
    run_cli: RunCli, cf_env: dict[str, str], cf_state: EmulatorState, cf_seed: Code24Seed
) -> None:
    cf_state.add_namespace(cf_seed.account_id, NAMESPACE)
    result = run_cli("bind", "--env", "staging", env=cf_env)
    assert result.exit_code == 0, result.stderr
    progress = [line for line in result.stderr.splitlines() if line.startswith("bind: ")]
    assert [line.split(" ", 4)[1:4] for line in progress] == [
        [str(n), "of", "5"] for n in range(1, 6)
    ]
    # Up to date, a rerun counts every worker it passes over (never "1 of 0").
    again = run_cli("bind", "--env", "staging", env=cf_env)
    assert again.exit_code == 0, again.stderr
    lines = [line for line in again.stderr.splitlines() if line.startswith("bind: ")]
    assert [line.split(" ", 4)[1:4] for line in lines] == [[str(n), "of", "5"] for n in range(1, 6)]
    assert all(line.endswith(": unchanged") for line in lines)
    # one summary line for the secrets, not one per secret
    assert [line for line in result.stderr.splitlines() if "secret" in line] == [
        "1 secret(s) still to set (values cannot be copied): "
        "`code24ctl workers --env staging` lists them"
    ]


def test_step_lines_are_throttled_by_an_injected_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock(start=0.0)
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    lines = output.StepLines("probe", 4, min_interval_s=5.0, clock=clock.monotonic)
    lines.step("a")  # the first is always shown
    clock.sleep(1.0)
    lines.step("b")  # too soon
    clock.sleep(5.0)
    lines.step("c")
    clock.sleep(0.5)
    lines.step("d")  # the last is always shown
    assert stream.getvalue().splitlines() == [
        "probe: 1 of 4 a",
        "probe: 3 of 4 c",
        "probe: 4 of 4 d",
    ]


def test_heartbeat_speaks_while_a_long_step_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    spoke = threading.Event()
    original = output.note

    def note(message: str) -> None:
        original(message)
        spoke.set()

    monkeypatch.setattr(output, "note", note)
    with output.heartbeat("apply: planning staging", every_s=0.01):
        assert spoke.wait(30)
    assert stream.getvalue().startswith("apply: planning staging: still working (")


# --------------------------------------------------------------------------------------------
# 8. tables never split an identifier


def test_narrow_tables_keep_identifiers_whole(
    run_cli: RunCli, cf_env: dict[str, str], cf_state: EmulatorState, cf_seed: Code24Seed
) -> None:
    long_name = "code24-workers-a-rather-long-namespace-name-staging"
    ns_id = cf_state.add_namespace(cf_seed.account_id, long_name)
    result = run_cli("namespace", "list", env={**cf_env, "COLUMNS": "60"})
    assert result.exit_code == 0, result.stderr
    assert long_name in result.stdout
    assert all(len(line) <= 60 for line in result.stdout.splitlines())
    assert "(left out to fit:" in result.stderr or ns_id in result.stdout
    very_narrow = run_cli("namespace", "list", env={**cf_env, "COLUMNS": "40"})
    # no room even for name alone and scripts: one record per block, every value whole
    assert f"name:    {long_name}" in very_narrow.stdout
    assert f"id:      {ns_id}" in very_narrow.stdout


def test_workers_at_60_columns_drops_columns_in_order_and_says_so(
    run_cli: RunCli, cf_env: dict[str, str], bound: str
) -> None:
    result = run_cli("workers", env={**cf_env, "COLUMNS": "60"})
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[0].split() == ["alias", "status", "secrets", "missing"]
    assert "competitive-analysis" in result.stdout
    assert "(left out to fit: modified, source; see --json)" in result.stderr


# --------------------------------------------------------------------------------------------
# 9. smaller points


def test_init_writes_a_starter_that_validates_and_never_overwrites(
    run_cli: RunCli, tmp_path: Path
) -> None:
    path = tmp_path / "namespaces.yaml"
    result = run_cli("init", "-c", str(path), config=None)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == f"wrote {path}\n"
    assert path.read_text(encoding="utf-8").startswith("# namespaces.yaml")
    valid = run_cli("config", "validate", "-c", str(path), config=None)
    assert valid.exit_code == 0, valid.stderr
    again = run_cli("init", "-c", str(path), config=None)
    assert again.exit_code == 2
    assert again.stderr.startswith(f"error: {path} already exists; nothing was written\n")


def test_namespace_list_needs_no_config(
    run_cli: RunCli, cf_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = run_cli("namespace", "list", "--json", env=cf_env, config=None)
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["namespaces"] == []


def test_yaml_errors_show_line_column_text_and_caret(run_cli: RunCli, tmp_path: Path) -> None:
    path = tmp_path / "namespaces.yaml"
    path.write_text("platform: x\nworkers:\n  a: {script: a\n  b: 1\n", encoding="utf-8")
    result = run_cli("config", "validate", config=path)
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: invalid config {path}:\n"
        f"  {path}:4: not valid YAML: expected ',' or '}}', but got ':' (column 4)\n"
        "        b: 1\n"
        "         ^\n"
    )


def test_a_key_at_the_wrong_level_is_reported_where_it_is(run_cli: RunCli, tmp_path: Path) -> None:
    def misplace(data: dict[str, Any]) -> None:
        data["environments"]["staging"]["vars"]["base_url"] = "https://x.example"
        data["environments"]["production"]["timeout_ms"] = 5

    config = write_config(tmp_path, misplace)
    result = run_cli("config", "validate", config=config)
    assert result.exit_code == 2
    assert (
        "environments.production.timeout_ms: looks like a misplaced key: 'timeout_ms' belongs "
        "under workers.<alias>"
    ) in result.stderr

    def base_url_among_vars(data: dict[str, Any]) -> None:
        data["environments"]["staging"]["vars"]["base_url"] = "https://x.example"

    config = write_config(tmp_path, base_url_among_vars)
    result = run_cli("config", "validate", config=config)
    assert result.exit_code == 2
    assert (
        "environments.staging.vars.base_url: not a variable name but an environment setting: "
        "indent it one level less (under environments.staging)"
    ) in result.stderr


def test_serve_without_a_config_suggests_demo(
    run_cli: RunCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = run_cli("serve", "--env", "local", config=None)
    assert result.exit_code == 2
    assert "code24ctl serve --demo" in result.stderr


@pytest.mark.parametrize(
    "command",
    [[], ["bind"], ["namespace", "delete"], ["secret", "put"], ["probe"], ["unbind"], ["rollback"]],
)
def test_help_shows_no_type_names(run_cli: RunCli, command: list[str]) -> None:
    result = run_cli(*command, "--help", env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for type_name in ("<bool>", "<list[str]>", "<str>", "<int>", "{NAME}", "{ALIAS}", "[["):
        assert type_name not in result.stdout, type_name


def test_global_state_is_reset_between_invocations(run_cli: RunCli) -> None:
    run_cli("--json", "config", "validate")
    result = run_cli("config", "validate")
    assert not result.stdout.startswith("{")


def test_serve_names_where_a_cloudflare_environment_came_from(run_cli: RunCli) -> None:
    result = run_cli("serve", env={"CODE24_ENV": "staging"})
    assert result.exit_code == 2
    assert result.stderr.startswith(
        "error: `serve` runs a local environment (one with 'upstreams'); "
        "'staging' (from CODE24_ENV) is a Cloudflare environment\n"
    )


HEAVY_AT_HELP = (
    "cloudflare",
    "httpx",
    "uvicorn",
    "httptools",
    "prometheus_client",
    "websockets",
    "aiohttp",
    "yaml",
    "code24ctl.config.models",
    "code24ctl.cloudflare",
    "code24ctl.dispatch",
    "code24ctl.ops",
    "code24ctl.probe",
    "code24ctl.serve",
)


def test_help_imports_no_heavy_module() -> None:
    # `code24ctl --help` names the default environment (it reads the repo's namespaces.yaml),
    # yet loads neither the SDK, the servers, PyYAML nor the config models: they load on first
    # use (a plain config is read by a line scan, code24ctl.config.environments).
    script = (
        "import contextlib, io, runpy, sys\n"
        "sys.argv = ['code24ctl', '--help']\n"
        "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
        "    try:\n"
        "        runpy.run_module('code24ctl', run_name='__main__')\n"
        "    except SystemExit:\n"
        "        pass\n"
        "assert 'default_env' in out.getvalue()\n"
        f"print(' '.join(m for m in {HEAVY_AT_HELP!r} if m in sys.modules))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CODE24_", "CLOUDFLARE_"))}
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == ""
