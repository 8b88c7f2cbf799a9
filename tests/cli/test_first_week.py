"""An operator's first week (#22): every case run as a subprocess, without a terminal.

Exit statuses that follow the README's table, no traceback for any bad port or path,
``config validate`` that finds everything at once, hints that name their source, prompts that
name what breaks, and the wrangler habits.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.emulator.seeds import Code24Seed
from tests.emulator.state import EmulatorState
from tests.support.cli import REPO_CONFIG, CliResult, run_subprocess
from tests.support.http_servers import Answer, LocalServer, refused_port
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


# --------------------------------------------------------------------------------------------
# config validate: every problem in one pass, each located


def _ten_mistakes(tmp_path: Path) -> Path:
    (tmp_path / "empty").mkdir()

    def break_it(data: dict[str, Any]) -> None:
        data["compatibility_date"] = "2025-13-01"  # 1: no such month
        data["workers"]["brand-worker"] = {"path": "nowhere"}  # 2: missing path
        data["workers"]["designer-worker"] = {"path": "empty"}  # 3: empty folder
        data["workers"]["market-research"]["timeout_msec"] = 5  # 4: unknown key
        data["routes"][0]["worker"] = "competitive"  # 5: unknown worker
        staging = data["environments"]["staging"]
        staging["vars"]["ROUTE_TABLE"] = "mine"  # 6: a binding the dispatcher needs
        staging["zone"] = "${CODE24_TEST_ZONE}"  # 7: unset variable
        staging["routes"] = ["staging.code24.dev/api/*", "staging.code24.dev/admin/*"]
        # 8: /elite/* prefixes unreachable on staging (a warning), 9: /admin/* reaches nothing
        data["environments"]["production"]["base_url"] = "https://code24.dev:99999"  # 10
        data["environments"]["local"]["upstreams"]["ghost"] = "http://127.0.0.1:9"  # 11

    return write_config(tmp_path, break_it)


def test_config_validate_reports_every_mistake_at_once(tmp_path: Path) -> None:
    config = _ten_mistakes(tmp_path)
    result = run_subprocess("config", "validate", "--config", str(config))
    assert result.exit_code == 2
    assert "Traceback" not in result.stderr
    found = [line.strip() for line in result.stderr.splitlines() if line.startswith("  ")]
    where = [line.removeprefix(f"{config}:").split(": ", 2)[:2] for line in found]
    fields = [field for _, field in where]
    assert fields == [
        "compatibility_date",
        "workers.market-research.timeout_msec",
        "workers.brand-worker.path",
        "workers.designer-worker.path",
        "routes[0].worker",
        "environments.staging.zone",
        "environments.staging.vars.ROUTE_TABLE",
        "environments.production.base_url",
        "environments.local.upstreams.ghost",
    ]
    text = "\n".join(found)
    assert "'2025-13-01' is not a date like 2025-01-01" in text
    assert "path nowhere: no such file or folder" in text
    assert "path empty: the folder holds no module files" in text
    assert "environment variable CODE24_TEST_ZONE is not set" in text
    assert "ROUTE_TABLE is a binding the dispatcher needs" in text
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 4, result.stderr  # /elite/brand, /elite/design, /elite/develop, /admin
    assert "no zone route reaches prefix /elite/brand (routes[2])" in warnings[0]
    assert "zone route staging.code24.dev/admin/* reaches no prefix" in warnings[-1]


def test_config_validate_strict_fails_on_warnings_alone(tmp_path: Path) -> None:
    def narrow(data: dict[str, Any]) -> None:
        data["environments"]["staging"]["routes"] = ["staging.code24.dev/api/*"]

    config = write_config(tmp_path, narrow)
    relaxed = run_subprocess("config", "validate", "--config", str(config))
    assert relaxed.exit_code == 0, relaxed.stderr
    assert relaxed.stdout.startswith(f"{config}: ok")
    assert relaxed.stderr.count("warning: ") == 3  # /elite/brand, /elite/design, /elite/develop
    strict = run_subprocess("config", "validate", "--strict", "--config", str(config))
    assert strict.exit_code == 2
    assert strict.stdout == ""
    assert strict.stderr.count("(a warning; --strict fails on it)") == 3


def test_a_compatibility_date_in_the_future_is_refused(tmp_path: Path) -> None:
    config = write_config(tmp_path, lambda d: d.update(compatibility_date="2999-01-01"))
    result = run_subprocess("config", "validate", "--config", str(config))
    assert result.exit_code == 2
    assert "compatibility_date: 2999-01-01 is in the future" in result.stderr


def test_an_unset_account_variable_is_named_when_it_is_needed(tmp_path: Path) -> None:
    config = write_config(tmp_path, lambda d: d.update(account_id="${ACME_ACCOUNT}"))
    result = run_subprocess(
        "workers", "--env", "staging", "--config", str(config),
        env={"CLOUDFLARE_API_TOKEN": "t" * 40},
    )  # fmt: skip
    assert result.exit_code == 2
    assert result.stderr.startswith(
        f"error: no Cloudflare account id: account_id in {config} is ${{ACME_ACCOUNT}}, "
        "and neither ACME_ACCOUNT nor CLOUDFLARE_ACCOUNT_ID is set\n"
    )
    assert "the config has none" not in result.stderr


# --------------------------------------------------------------------------------------------
# Config discovery: walk up to the repository root, and say where it looked


def test_the_config_is_found_in_a_parent_folder_up_to_the_repository_root(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    config = write_config(repo)
    deep = repo / "workers" / "brand"
    deep.mkdir(parents=True)
    result = run_subprocess("config", "validate", cwd=deep)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith(f"{config}: ok")


def test_no_config_up_to_the_repository_root_names_the_folders_searched(tmp_path: Path) -> None:
    write_config(tmp_path)  # above the repository root: not searched
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    deep = repo / "src"
    deep.mkdir()
    result = run_subprocess("config", "validate", cwd=deep)
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: config file namespaces.yaml not found (looked in {deep} and its parents up "
        f"to {repo})\n"
        "  hint: pass --config PATH or set CODE24_CONFIG; `code24ctl init` writes a starter file\n"
    )


def test_a_missing_config_from_code24_config_says_where_the_path_came_from(
    tmp_path: Path,
) -> None:
    missing = tmp_path / "gone.yaml"
    result = run_subprocess("config", "validate", env={"CODE24_CONFIG": str(missing)})
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: config file {missing} not found (the path comes from CODE24_CONFIG)\n"
        "  hint: point CODE24_CONFIG at your namespaces.yaml or unset it; "
        "`code24ctl init` writes a starter file\n"
    )


# --------------------------------------------------------------------------------------------
# wrangler habits: versions list, deployments list, whoami; no write suggested for a read


@pytest.mark.parametrize(
    "habit",
    [("versions", "list"), ("deployments", "list"), ("deployments", "status")],
    ids=" ".join,
)
def test_wrangler_habits_run_the_read_only_versions_command(
    habit: tuple[str, ...], cf_env: dict[str, str], cf_state: EmulatorState
) -> None:
    ours = run_subprocess("versions", "--env", "staging", "--json", env=cf_env)
    theirs = run_subprocess(*habit, "--env", "staging", "--json", env=cf_env)
    assert theirs.exit_code == ours.exit_code, theirs.stderr
    assert theirs.stderr == ours.stderr
    assert json.loads(theirs.stdout) == json.loads(ours.stdout)
    assert writes(cf_state) == []


def test_whoami_names_the_token_and_the_account(
    cf_env: dict[str, str], cf_seed: Code24Seed, cf_state: EmulatorState
) -> None:
    result = run_subprocess("whoami", "--env", "staging", env=cf_env)
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "ok    token: user token, active"
    assert lines[1].startswith("ok    account: ") and f"({cf_seed.account_id})" in lines[1]
    document = json.loads(run_subprocess("whoami", "--env", "staging", "--json", env=cf_env).stdout)
    assert (document["command"], document["account_id"], document["ok"]) == (
        "whoami", cf_seed.account_id, True,
    )  # fmt: skip
    assert writes(cf_state) == []


def test_whoami_with_a_refused_token_is_exit_1(cf_env: dict[str, str]) -> None:
    result = run_subprocess(
        "whoami", "--env", "staging", env={**cf_env, "CLOUDFLARE_API_TOKEN": "x" * 40}
    )
    assert result.exit_code == 1
    assert result.stdout.splitlines()[0].startswith("FAIL  token: Cloudflare refused the token")
    assert result.stdout.splitlines()[2] == "skip  account: needs a valid token"


@pytest.mark.parametrize("typo", ["deployments-list", "deplyments", "applyy", "binds"])
def test_a_typo_is_never_answered_with_a_write_command(typo: str) -> None:
    result = run_subprocess(typo)
    assert result.exit_code == 2
    assert f"No such command '{typo}'." in result.stderr
    for write in ("deploy", "apply", "bind", "unbind", "rollback", "promote"):
        assert f"Did you mean '{write}'" not in result.stderr


def test_a_typo_of_a_read_command_is_answered() -> None:
    result = run_subprocess("verions")
    assert "Did you mean 'versions'?" in result.stderr


# --------------------------------------------------------------------------------------------
# Destructive prompts name what breaks


def test_unbind_says_which_routes_still_lead_to_the_worker(
    cf_env: dict[str, str], cf_state: EmulatorState, cf_seed: Code24Seed, namespace: str
) -> None:
    cf_state.add_namespace_script(
        cf_seed.account_id, NAMESPACE, "brand-worker",
        {"index.js": ("export default {};\n", "application/javascript+module")}, "index.js",
    )  # fmt: skip
    result = run_subprocess(
        "unbind", "brand-worker", "--env", "staging", "--config", str(REPO_CONFIG), env=cf_env
    )
    assert result.exit_code == 2  # no terminal, no --yes: refused
    assert result.stderr.splitlines()[1] == (
        "warning: /elite/brand still routes to brand-worker in staging: the live dispatcher "
        "code24-dynamic-dispatcher-staging would answer there with the fallback "
        "(worker_not_found) until it is bound again or the route is removed"
    )
    assert writes(cf_state) == []


def test_namespace_delete_names_the_environment_and_the_live_dispatcher(
    cf_env: dict[str, str], cf_state: EmulatorState, namespace: str
) -> None:
    deployed = run_subprocess(
        "deploy", "--env", "staging", "--config", str(REPO_CONFIG), env=cf_env
    )
    assert deployed.exit_code == 0, deployed.stderr
    before = len(writes(cf_state))
    result = run_subprocess(
        "namespace", "delete", NAMESPACE, "--config", str(REPO_CONFIG), env=cf_env
    )
    assert result.exit_code == 2
    assert f"warning: {NAMESPACE} is the staging environment's namespace ({REPO_CONFIG})" in (
        result.stderr.splitlines()
    )
    assert (
        "warning: the live dispatcher code24-dynamic-dispatcher-staging is bound to it: every "
        "route of staging (staging.code24.dev/api/*, staging.code24.dev/elite/*) would then fail"
    ) in result.stderr.splitlines()
    assert len(writes(cf_state)) == before


# --------------------------------------------------------------------------------------------
# serve: a taken port is a clean error (exit 2), with --json an error document


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port something else listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        yield sock.getsockname()[1]


def _serve(*args: str) -> CliResult:
    return run_subprocess("serve", "--env", "local", "--config", str(REPO_CONFIG), *args)


def _assert_clean_error(result: CliResult, message: str) -> None:
    assert result.exit_code == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert message in result.stderr
    document = json.loads(result.stdout)
    assert document["error"]["code"] == "usage"
    assert document["error"]["exit_status"] == 2
    assert message in document["error"]["message"]


def test_serve_with_a_taken_metrics_port_is_a_clean_error(taken_port: int) -> None:
    result = _serve("--port", "0", "--metrics-port", str(taken_port), "--json")
    _assert_clean_error(result, f"cannot listen on 127.0.0.1:{taken_port} for --metrics-port")


def test_serve_with_the_same_port_twice_is_a_clean_error(taken_port: int) -> None:
    port = str(taken_port + 1 if taken_port < 65535 else taken_port - 1)
    result = _serve("--port", port, "--metrics-port", port, "--json")
    _assert_clean_error(result, f"--metrics-port {port} is also the port serve listens on")


def test_serve_demo_with_a_taken_demo_port_is_a_clean_error(taken_port: int) -> None:
    result = _serve("--demo", "--port", "0", "--demo-ports", str(taken_port), "--json")
    _assert_clean_error(result, f"on 127.0.0.1:{taken_port}: Address already in use")
    assert "--demo-ports" in json.loads(result.stdout)["error"]["hint"]


# --------------------------------------------------------------------------------------------
# No traceback from any command, for any bad port or path

BAD_PORTS = ["-1", "65536", "http", "99999999999999999999"]
#: Each command with a path or URL it is given: "{missing}" a path that does not exist,
#: "{dir}" a folder where a file belongs, "{port}" a port: every one gets every bad value.
WALK: list[tuple[str, ...]] = [
    ("serve", "--env", "local", "--port", "{port}"),
    ("serve", "--env", "local", "--port", "0", "--metrics-port", "{port}"),
    ("serve", "--env", "local", "--demo", "--port", "0", "--demo-ports", "{port}"),
    ("probe", "--env", "local", "--base-url", "http://127.0.0.1:{port}"),
    ("doctor", "--env", "staging", "--base-url", "http://127.0.0.1:{port}"),
    ("probe", "--env", "local", "--base-url", "{path}"),
    ("probe", "--env", "local", "--junit", "{path}"),
    ("plan", "--env", "staging", "--out", "{path}"),
    ("apply", "--env", "staging", "--plan-file", "{path}"),
    ("deploy", "--env", "staging", "--dry-run", "--wrangler-toml", "{path}"),
    ("secret", "put", "brand-worker", "--env", "staging", "--from-file", "{path}"),
    ("init", "--config", "{path}"),
    ("config", "validate", "--config", "{path}"),
    *[
        (*command, "--config", "{path}")
        for command in (
            ("workers",),
            ("bind",),
            ("unbind", "brand-worker"),
            ("deploy",),
            ("plan",),
            ("apply",),
            ("probe",),
            ("serve", "--port", "0"),
            ("doctor",),
            ("stats",),
            ("tail",),
            ("versions",),
            ("whoami",),
            ("promote",),
            ("rollback",),
            ("namespace", "get"),
            ("namespace", "create"),
            ("secret", "list", "brand-worker"),
            ("config", "show"),
        )
    ],
    ("stats", "--env", "local", "--metrics-url", "http://127.0.0.1:{port}/metrics"),
]


def _cases() -> list[Any]:
    cases = []
    for command in WALK:
        text = " ".join(command)
        values = BAD_PORTS if "{port}" in text else ["{missing}", "{dir}", "{nested}", ""]
        for value in values:
            if command[0] == "serve" and value == "":
                continue  # --config "" is no --config: serve finds the repo's file and runs
            cases.append(pytest.param(command, value, id=f"{text} = {value!r}"))
    return cases


@pytest.mark.parametrize(("command", "value"), _cases())
def test_no_command_crashes_on_a_bad_port_or_path(
    command: tuple[str, ...], value: str, tmp_path: Path, cf_env: dict[str, str]
) -> None:
    (tmp_path / "folder").mkdir()
    paths = {
        "{missing}": str(tmp_path / "missing.yaml"),
        "{dir}": str(tmp_path / "folder"),
        "{nested}": str(tmp_path / "no" / "such" / "folder" / "file"),
    }
    value = paths.get(value, value)
    args = [part.replace("{port}", value).replace("{path}", value) for part in command]
    if "--config" not in args:
        args += ["--config", str(REPO_CONFIG)]
    result = run_subprocess(*args, env={**cf_env, "CODE24_API_TIMEOUT": "2"})
    assert "Traceback" not in result.stderr, result.stderr
    # A file to write may well not exist yet (plan --out, init): only a failure must say why.
    assert result.exit_code in (0, 1, 2, 3), result.stderr
    if result.exit_code:
        assert result.stderr.strip(), "a failure says why"


# --------------------------------------------------------------------------------------------
# Hints name the setting or source that caused the problem


def test_probe_base_url_with_nothing_listening_names_the_url_not_serve(
    cf_env: dict[str, str],
) -> None:
    with refused_port() as port:
        url = f"http://127.0.0.1:{port}"
        result = run_subprocess(
            "probe", "--env", "staging", "--base-url", url, "--config", str(REPO_CONFIG),
            env=cf_env,
        )  # fmt: skip
    assert result.exit_code == 3
    assert result.stderr.splitlines()[-1] == (
        f"  hint: nothing answers at {url} (from --base-url): start what should listen "
        "there, or fix the URL"
    )
    assert "code24ctl serve --env staging" not in result.stderr


@pytest.fixture
def self_signed_https(tmp_path: Path) -> Iterator[str]:
    """An HTTPS server on 127.0.0.1 with a self-signed certificate; yields its URL."""
    import http.server
    import ssl
    import subprocess
    import threading

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_probe_of_a_self_signed_https_url_names_the_certificate_and_ssl_cert_file(
    self_signed_https: str, cf_env: dict[str, str]
) -> None:
    result = run_subprocess(
        "probe", "--env", "staging", "--base-url", self_signed_https, "--route", "/api/market",
        "--config", str(REPO_CONFIG), env=cf_env,
    )  # fmt: skip
    assert result.exit_code == 3, result.stderr
    assert "the TLS certificate of 127.0.0.1:" in result.stderr
    assert "is not trusted: self-signed certificate" in result.stderr
    assert result.stderr.splitlines()[-1] == (
        "  hint: 127.0.0.1's certificate is not trusted here (self-signed, or from a private "
        "CA): set SSL_CERT_FILE to a CA bundle that holds its issuer; the URL came from "
        "--base-url"
    )


def test_a_wrong_account_id_is_named_with_its_source(cf_env: dict[str, str]) -> None:
    wrong = "f" * 32
    result = run_subprocess(
        "workers", "--env", "staging", "--config", str(REPO_CONFIG),
        env={**cf_env, "CLOUDFLARE_ACCOUNT_ID": wrong},
    )  # fmt: skip
    assert result.exit_code == 3
    assert result.stderr.splitlines()[-1] == (
        "  hint: the account id is wrong or the token cannot see it: check "
        f"CLOUDFLARE_ACCOUNT_ID; or account {wrong} (from CLOUDFLARE_ACCOUNT_ID) may not be "
        "yours: `code24ctl whoami` tells a wrong account from a wrong token"
    )


def test_a_base_url_without_client_v4_names_the_variable(cf_env: dict[str, str]) -> None:
    base = cf_env["CLOUDFLARE_BASE_URL"].removesuffix("/client/v4")
    result = run_subprocess(
        "workers", "--env", "staging", "--config", str(REPO_CONFIG),
        env={**cf_env, "CLOUDFLARE_BASE_URL": base},
    )  # fmt: skip
    assert result.exit_code == 3
    assert "cloudflarestatus" not in result.stderr
    assert result.stderr.splitlines()[-1] == (
        f"  hint: CLOUDFLARE_BASE_URL is {base!r}: the API answers in its JSON envelope, so "
        "check that it is the API's address and ends in /client/v4 (or unset "
        "CLOUDFLARE_BASE_URL to use Cloudflare's)"
    )


# --------------------------------------------------------------------------------------------
# Output: ids never split, no trailing spaces, no escapes with --no-color / NO_COLOR


def test_versions_on_a_narrow_terminal_drops_columns_not_ids(
    cf_env: dict[str, str], namespace: str
) -> None:
    deployed = run_subprocess(
        "deploy", "--env", "staging", "--config", str(REPO_CONFIG), env=cf_env
    )
    assert deployed.exit_code == 0, deployed.stderr
    wide = run_subprocess("versions", "--env", "staging", "--json", env=cf_env)
    ids = [v["id"] for v in json.loads(wide.stdout)["versions"]]
    result = run_subprocess(
        "versions", "--env", "staging", "--config", str(REPO_CONFIG),
        env={**cf_env, "COLUMNS": "60"},
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[1].startswith("state: ")
    assert lines[2].split()[:2] == ["traffic", "version"]
    assert [line.split()[1] for line in lines[3:]] == ids  # each id whole, on its own row
    assert "(left out to fit: message, author, code24ctl, config, created; see --json)" in (
        result.stderr
    )
    assert all(len(line) <= 60 for line in lines[2:])  # the table; the state line is prose


def test_tables_have_no_trailing_spaces(
    cf_env: dict[str, str], cf_state: EmulatorState, cf_seed: Code24Seed
) -> None:
    cf_state.add_namespace(cf_seed.account_id, NAMESPACE)
    cf_state.add_namespace(cf_seed.account_id, "a-much-longer-namespace-name-for-padding")
    result = run_subprocess("namespace", "list", env=cf_env)
    assert result.exit_code == 0, result.stderr
    assert len(result.stdout.splitlines()) == 3
    assert [line for line in result.stdout.splitlines() if line != line.rstrip()] == []


@pytest.mark.parametrize(
    "plain", [{"args": ["--no-color"]}, {"env": {"NO_COLOR": "1"}}], ids=["--no-color", "NO_COLOR"]
)
def test_no_color_means_no_escape_codes_at_all(
    plain: dict[str, Any], cf_env: dict[str, str]
) -> None:
    env = {**cf_env, "CLOUDFLARE_API_TOKEN": "x" * 40, "FORCE_COLOR": "1", **plain.get("env", {})}
    colored = run_subprocess("whoami", "--env", "staging", env={**env, "NO_COLOR": ""})
    assert "\x1b[" in colored.stdout  # FORCE_COLOR: a terminal's output, with its styles
    result = run_subprocess("whoami", "--env", "staging", *plain.get("args", []), env=env)
    assert result.exit_code == 1
    assert result.stdout.startswith("FAIL  token:")
    assert "\x1b" not in result.stdout + result.stderr


def test_show_metadata_stdout_is_the_json_alone(cf_env: dict[str, str], namespace: str) -> None:
    result = run_subprocess(
        "deploy", "--env", "staging", "--dry-run", "--show-metadata", "--config", str(REPO_CONFIG),
        env=cf_env,
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["main_module"] == "dispatcher.js"
    assert "dry run: nothing was written" in result.stderr


def test_a_dry_run_with_wrangler_toml_says_what_was_not_written(
    tmp_path: Path, cf_env: dict[str, str], cf_state: EmulatorState, namespace: str
) -> None:
    out = tmp_path / "wrangler.toml"
    result = run_subprocess(
        "deploy", "--env", "staging", "--dry-run", "--wrangler-toml", str(out),
        "--config", str(REPO_CONFIG), env=cf_env,
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    notes = result.stderr.splitlines()
    assert "dry run: nothing was written to Cloudflare" in notes
    assert f"wrote {out}" in notes
    assert "dry run: nothing was written" not in notes
    assert writes(cf_state) == []


def test_probe_names_a_redirect_and_where_it_leads(cf_env: dict[str, str]) -> None:
    login = "https://login.example.invalid/sso?next=%2Fapi"
    redirect = Answer(302, b"", content_type=None, headers=(("Location", login),))
    with LocalServer({}, default=redirect) as site:
        result = run_subprocess(
            "probe", "--env", "staging", "--base-url", site.url, "--route", "/api/market",
            "--json", "--config", str(REPO_CONFIG), env=cf_env,
        )  # fmt: skip
    (row,) = json.loads(result.stdout)["routes"]
    assert row["status"] == 302
    assert row["reason"] == f"a redirect (HTTP 302) to {login}, which probe does not follow"
    assert "no body" not in result.stdout + result.stderr


def test_serve_names_the_local_upstream_that_refused(tmp_path: Path) -> None:
    import httpx

    from tests.support.serve_process import ServeProcess, local_config

    with refused_port() as port:
        upstream = f"http://127.0.0.1:{port}"
        config = local_config(tmp_path, {"brand-worker": upstream})
        serve = ServeProcess(tmp_path, "--env", "local", config=config)
        try:
            answer = httpx.post(f"http://127.0.0.1:{serve.port}/elite/brand/create", json={})
            assert answer.headers["x-code24-fallback-reason"] == "worker_not_found"
            httpx.post(f"http://127.0.0.1:{serve.port}/elite/brand/create", json={})
        finally:
            assert serve.stop() == 0
    notes = [line for line in serve.stderr().splitlines() if "refused the connection" in line]
    assert notes == [
        f"warning: upstream brand-worker at {upstream} refused the connection (is it "
        "running?); answered worker_not_found. Start it, or fix "
        "environments.local.upstreams.brand-worker"
    ]


def test_serve_demo_with_the_users_config_describes_that_config(tmp_path: Path) -> None:
    from tests.support.serve_process import ServeProcess

    def own(data: dict[str, Any]) -> None:
        data["workers"] = {"pricing": {"script": "pricing-{env}"}}
        data["routes"] = [{"prefix": "/pricing", "worker": "pricing"}]
        data["environments"]["local"]["upstreams"] = {"pricing": "http://127.0.0.1:9"}

    config = write_config(tmp_path, own)
    demo = ("--env", "local", "--demo", "--demo-ports", "auto")
    serve = ServeProcess(tmp_path, *demo, config=config)
    assert serve.stop() == 0
    text = serve.stderr()
    assert (
        "demo: built-in sample workers answer every alias: pricing answer a small JSON object "
        "naming the worker and path." in text.splitlines()
    )
    assert "designer-worker" not in text


def _wait_for(serve: Any, text: str, timeout: float = 20) -> None:
    import time

    deadline = time.monotonic() + timeout
    while text not in serve.stderr():
        assert time.monotonic() < deadline, f"never saw {text!r} in:\n{serve.stderr()}"
        time.sleep(0.05)


def test_watch_says_a_new_base_url_port_needs_a_restart(tmp_path: Path) -> None:
    import yaml

    from tests.support.serve_process import ServeProcess, local_config

    config = local_config(tmp_path, {"brand-worker": "http://127.0.0.1:9"})
    serve = ServeProcess(tmp_path, "--watch", config=config)
    try:
        data = yaml.safe_load(config.read_text())
        data["environments"]["local"]["base_url"] = "http://127.0.0.1:8799"
        config.write_text(yaml.safe_dump(data), encoding="utf-8")
        _wait_for(serve, "warning: base_url's port")
    finally:
        assert serve.stop() == 0
    assert (
        f"warning: base_url's port changed from 8787 to 8799, but serve keeps listening on "
        f"port {serve.port}: restart serve to move (probe --env finds it at the new port only "
        "then)"
    ) in serve.stderr().splitlines()


def test_watch_says_when_the_config_is_moved_away(tmp_path: Path) -> None:
    from tests.support.serve_process import ServeProcess, local_config

    config = local_config(tmp_path, {"brand-worker": "http://127.0.0.1:9"})
    serve = ServeProcess(tmp_path, "--watch", config=config)
    try:
        config.rename(tmp_path / "moved.yaml")
        _wait_for(serve, "warning: reload of ")
    finally:
        assert serve.stop() == 0
    assert (
        f"warning: reload of {config} failed, still serving the previous config (5 routes): "
        f"config file {config} not found (the path comes from --config)"
    ) in serve.stderr().splitlines()


def test_an_html_502_from_a_wrong_base_url_names_the_variable(cf_env: dict[str, str]) -> None:
    page = b"<html><body><h1>502 Bad Gateway</h1></body></html>"
    with LocalServer({}, default=Answer(502, page, content_type="text/html")) as proxy:
        base = f"{proxy.url}/client/v4"
        result = run_subprocess(
            "workers", "--env", "staging", "--config", str(REPO_CONFIG),
            # A deadline shorter than the first backoff: one answer, no real-time retries.
            env={**cf_env, "CLOUDFLARE_BASE_URL": base, "CODE24_API_TIMEOUT": "0.1"},
        )  # fmt: skip
    assert result.exit_code == 3, result.stderr
    assert "cloudflarestatus" not in result.stderr
    assert f"  hint: CLOUDFLARE_BASE_URL is {base!r}" in result.stderr


HOSTILE_TYPES = """\
platform: X
compatibility_date: 2025-01-01
default_env: nope
workers:
  1: {script: a}
  b: {path: 5}
routes:
  - 7
  - {prefix: /a, worker: zz}
  - {prefix: 9, worker: b}
environments:
  2: {namespace: n, dispatcher: d, routes: [5, "x.dev/a/*"], vars: [1, 2]}
  e: {namespace: n, dispatcher: d, routes: "x.dev/*", vars: {ROUTE_TABLE: 1}, upstreams: 5}
"""


@pytest.mark.parametrize("command", [("config", "validate"), ("workers", "--env", "e")])
def test_wrong_types_everywhere_are_problems_not_a_crash(
    command: tuple[str, ...], tmp_path: Path
) -> None:
    config = tmp_path / "namespaces.yaml"
    config.write_text(HOSTILE_TYPES)
    result = run_subprocess(*command, "--config", str(config))
    assert result.exit_code == 2
    assert "Traceback" not in result.stderr
    assert f"{config}:9: routes[1].worker: unknown worker 'zz' (configured: 1, b)" in (
        result.stderr
    )
    assert f"{config}:13: environments.e.vars.ROUTE_TABLE: ROUTE_TABLE is a binding" in (
        result.stderr
    )
