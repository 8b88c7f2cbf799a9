"""``code24ctl bind`` / ``unbind`` / ``secret put`` end to end: the CLI over real HTTP to the
Cloudflare emulator (``CLOUDFLARE_BASE_URL``), plus the pacer alone."""

from __future__ import annotations

import email.utils
import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from code24ctl.cloudflare.pacing import Pacer, RetryPolicy, retry_after_seconds
from tests.emulator.seeds import (
    ACCOUNT_ID,
    MULTI_MODULE_SCRIPT,
    MULTI_MODULE_SECRET,
    MULTI_MODULE_SECRET_VALUE,
    Code24Seed,
)
from tests.emulator.state import EmulatorState
from tests.support.cli import REPO_CONFIG, RunCli
from tests.support.staging import ALIASES, NAMESPACE, STAGING_SCRIPTS, write_config, writes

SCRIPTS = f"/accounts/{ACCOUNT_ID}/workers/dispatch/namespaces/{NAMESPACE}/scripts"


def row(alias: str, action: str, secrets: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    """One ``bind --json`` row as it must appear."""
    base: dict[str, Any] = {
        "alias": alias,
        "action": action,
        "source": f"script {STAGING_SCRIPTS[alias]}" if alias in STAGING_SCRIPTS else "",
        "secrets_to_set": secrets or [],
        "error": None,
        "code": None,
        "hint": None,
        "changes": [],
        "dropped_bindings": [],
    }
    base.update(extra)
    return base


def bind_json(run_cli: RunCli, env: dict[str, str], *args: str, **kw: Any) -> list[Any]:
    result = run_cli("bind", "--env", "staging", "--json", *args, env=env, **kw)
    assert result.exit_code == 0, result.stderr
    rows: list[Any] = json.loads(result.stdout)
    return rows


@pytest.fixture
def namespace(cf_state: EmulatorState, cf_seed: Code24Seed) -> str:
    cf_state.add_namespace(cf_seed.account_id, NAMESPACE)
    return NAMESPACE


# --------------------------------------------------------------------------------------------
# copies of account Workers


def test_bind_copies_every_worker_and_the_multipart_body_is_exact(
    run_cli: RunCli, cf_env: dict[str, str], cf_state: EmulatorState, cf_seed: Code24Seed,
    namespace: str,
) -> None:  # fmt: skip
    rows = bind_json(run_cli, cf_env)

    assert rows == [
        row(alias, "created", [MULTI_MODULE_SECRET] if alias == "developer-worker" else [])
        for alias in ALIASES
    ]
    assert cf_state.namespace_script_names(cf_seed.account_id, NAMESPACE) == sorted(ALIASES)

    uploads = cf_state.requests(method="PUT", path_contains="/scripts/developer-worker")
    assert len(uploads) == 1
    upload = uploads[0]
    assert upload.path == f"{SCRIPTS}/developer-worker"
    assert upload.content_type is not None
    assert upload.content_type.startswith("multipart/form-data; boundary=")
    parts = upload.parts or []
    assert [(p.name, p.filename, p.content_type) for p in parts] == [
        ("files", "index.js", "application/javascript+module"),
        ("files", "lib/render.js", "application/javascript+module"),
        ("files", "prompts.json", "application/json"),
        ("metadata", None, "application/json"),
    ]
    source = cf_state.account_script(cf_seed.account_id, MULTI_MODULE_SCRIPT)
    assert source is not None
    for part in parts[:3]:
        assert part.filename is not None
        assert part.data == source.modules[part.filename].content
    assert json.loads(parts[3].data) == {
        "main_module": "index.js",
        "bindings": [
            {"type": "plain_text", "name": "ENVIRONMENT", "text": "staging"},
            {"type": "kv_namespace", "name": "CACHE", "namespace_id": cf_seed.kv_cache_id},
        ],
        "compatibility_flags": ["nodejs_compat"],
        "keep_bindings": ["secret_text", "secret_key"],
        "compatibility_date": "2024-11-11",
    }
    # The secret's value can never be read back, so it is in no request we sent.
    for record in cf_state.requests():
        assert MULTI_MODULE_SECRET_VALUE.encode() not in record.body
    copied = cf_state.namespace_script(cf_seed.account_id, NAMESPACE, "developer-worker")
    assert copied is not None
    assert copied.secret_names == []
    assert copied.main_module == "index.js"

    single = cf_state.requests(method="PUT", path_contains="/scripts/brand-worker")[0]
    assert [(p.name, p.filename, p.content_type) for p in single.parts or []] == [
        ("files", "worker.js", "application/javascript+module"),
        ("metadata", None, "application/json"),
    ]


def test_bind_human_output_lists_the_secrets_still_to_set(
    run_cli: RunCli, cf_env: dict[str, str], namespace: str
) -> None:
    result = run_cli("bind", "--env", "staging", env={**cf_env, "COLUMNS": "200"})
    assert result.exit_code == 0, result.stderr
    lines = [line.split() for line in result.stdout.splitlines()]
    assert lines == [
        ["alias", "action", "source", "secrets", "to", "set"],
        ["competitive-analysis", "created", "script", "competitive-analysis-worker-staging", "-"],
        ["market-research", "created", "script", "market-research-worker-staging", "-"],
        ["brand-worker", "created", "script", "brand-worker-staging", "-"],
        ["designer-worker", "created", "script", "designer-worker-staging", "-"],
        ["developer-worker", "created", "script", "advanced-developer-worker-staging",
         "OPENAI_API_KEY"],
    ]  # fmt: skip
    assert result.stderr == (
        f"5 created in dispatch namespace {NAMESPACE}\n"
        "secrets still to set (their values cannot be copied):\n"
        "  code24ctl secret put developer-worker OPENAI_API_KEY --env staging\n"
    )


def test_second_bind_uploads_nothing_and_secrets_survive_updates(
    run_cli: RunCli, cf_env: dict[str, str], cf_state: EmulatorState, cf_seed: Code24Seed,
    namespace: str,
) -> None:  # fmt: skip
    bind_json(run_cli, cf_env)
    cf_state.clear_requests()

    rows = bind_json(run_cli, cf_env)
    assert rows == [
        row(alias, "unchanged", [MULTI_MODULE_SECRET] if alias == "developer-worker" else [])
        for alias in ALIASES
    ]
    assert writes(cf_state) == []

    # Set the secret from stdin: it lands on the namespace copy and is never printed.
    value = "sk-live-SECRET-from-stdin"
    put = run_cli(
        "secret", "put", "developer-worker", MULTI_MODULE_SECRET, "--env", "staging",
        env=cf_env, input=value + "\n",
    )  # fmt: skip
    assert put.exit_code == 0, put.stderr
    assert (
        put.stdout
        == f"set secret OPENAI_API_KEY on developer-worker in dispatch namespace {NAMESPACE}\n"
    )
    assert value not in put.output
    copied = cf_state.namespace_script(cf_seed.account_id, NAMESPACE, "developer-worker")
    assert copied is not None
    assert copied.secrets == {MULTI_MODULE_SECRET: value}

    # Now nothing is left to set, and still nothing is uploaded.
    cf_state.clear_requests()
    rows = bind_json(run_cli, cf_env)
    assert rows == [row(alias, "unchanged") for alias in ALIASES]
    assert writes(cf_state) == []

    # The account Worker changes: only it is uploaded again, and the secret set above survives.
    source = cf_state.account_script(cf_seed.account_id, MULTI_MODULE_SCRIPT)
    assert source is not None
    modules = {n: (m.content, m.content_type) for n, m in source.modules.items()}
    modules["lib/render.js"] = (b"export function render() { return {v: 2}; }\n",
                                "application/javascript+module")  # fmt: skip
    cf_state.add_account_script(
        cf_seed.account_id, MULTI_MODULE_SCRIPT, modules, main_module="index.js",
        bindings=[b for b in source.public_bindings() if b["type"] != "secret_text"],
        compatibility_date="2024-11-11", compatibility_flags=["nodejs_compat", "url_standard"],
    )  # fmt: skip
    cf_state.clear_requests()
    rows = bind_json(run_cli, cf_env)
    assert rows == [
        row(alias, "unchanged")
        if alias != "developer-worker"
        else row(alias, "updated", changes=["modules", "compatibility_flags"])
        for alias in ALIASES
    ]
    assert writes(cf_state) == [f"PUT {SCRIPTS}/developer-worker"]
    copied = cf_state.namespace_script(cf_seed.account_id, NAMESPACE, "developer-worker")
    assert copied is not None
    assert copied.secrets == {MULTI_MODULE_SECRET: value}
    assert copied.modules["lib/render.js"].content == modules["lib/render.js"][0]


def test_dry_run_writes_nothing(
    run_cli: RunCli, cf_env: dict[str, str], cf_state: EmulatorState, cf_seed: Code24Seed,
    namespace: str,
) -> None:  # fmt: skip
    rows = bind_json(run_cli, cf_env, "--dry-run")
    assert rows == [
        row(alias, "would-create", [MULTI_MODULE_SECRET] if alias == "developer-worker" else [])
        for alias in ALIASES
    ]
    assert writes(cf_state) == []
    assert cf_state.namespace_script_names(cf_seed.account_id, NAMESPACE) == []

    bind_json(run_cli, cf_env)
    cf_state.add_account_script(
        cf_seed.account_id, "brand-worker-staging",
        {"worker.js": ("export default {fetch() { return Response.json({v: 2}); }};\n",
                       "application/javascript+module")},
        main_module="worker.js",
        bindings=[{"type": "plain_text", "name": "ENVIRONMENT", "text": "staging"}],
    )  # fmt: skip
    cf_state.clear_requests()
    result = run_cli("bind", "--env", "staging", "--dry-run", env=cf_env)
    assert result.exit_code == 0, result.stderr
    assert result.stderr.splitlines()[0] == (
        f"dry run, nothing written: 1 would-update, 4 unchanged in dispatch namespace {NAMESPACE}"
    )
    assert writes(cf_state) == []


def test_bind_before_the_namespace_exists_is_one_preflight_failure(
    run_cli: RunCli, cf_env: dict[str, str], cf_state: EmulatorState, cf_seed: Code24Seed
) -> None:
    result = run_cli("bind", "--env", "staging", env=cf_env)
    assert result.exit_code == 3
    assert result.stdout == ""
    assert result.stderr == (
        f"error: dispatch namespace {NAMESPACE} does not exist on this account "
        "(Cloudflare API error 100119)\n"
        "  hint: run `code24ctl namespace create --env staging` first "
        "(or `code24ctl apply --env staging` for every step)\n"
    )
    assert [f"{r.method} {r.path}" for r in cf_state.requests()] == [
        f"GET /accounts/{cf_seed.account_id}/workers/dispatch/namespaces/{NAMESPACE}"
    ]


def test_a_missing_source_worker_points_at_the_config(
    run_cli: RunCli, cf_env: dict[str, str], cf_state: EmulatorState, cf_seed: Code24Seed
) -> None:
    cf_state.add_namespace(cf_seed.account_id, "code24-workers-production")
    result = run_cli("bind", "brand-worker", "--env", "production", env=cf_env)
    assert result.exit_code == 3
    assert (
        "failed: brand-worker (API error 10007): "
        "the account Worker brand-worker-production to copy does not exist\n"
        f"  hint: check workers.brand-worker.script in {REPO_CONFIG} (for production), "
        "or deploy that Worker to the account first\n"
    ) in result.stderr


def test_bind_named_aliases_only(
    run_cli: RunCli, cf_env: dict[str, str], cf_state: EmulatorState, cf_seed: Code24Seed,
    namespace: str,
) -> None:  # fmt: skip
    rows = bind_json(run_cli, cf_env, "market-research", "brand-worker", "market-research")
    assert rows == [row("market-research", "created"), row("brand-worker", "created")]
    assert cf_state.namespace_script_names(cf_seed.account_id, NAMESPACE) == [
        "brand-worker", "market-research",
    ]  # fmt: skip


def test_unknown_alias_is_exit_2_before_any_api_call(
    run_cli: RunCli, cf_env: dict[str, str], cf_state: EmulatorState, namespace: str
) -> None:
    result = run_cli("bind", "brand-worker", "brand-wrker", "--env", "staging", env=cf_env)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == (
        "error: unknown worker alias: brand-wrker\n"
        f"  hint: configured in {REPO_CONFIG}: {', '.join(ALIASES)}\n"
    )
    assert cf_state.requests() == []


def test_missing_token_is_exit_2_and_a_bad_token_never_printed(
    run_cli: RunCli, cf_env: dict[str, str], cf_state: EmulatorState, namespace: str
) -> None:
    env = {k: v for k, v in cf_env.items() if k != "CLOUDFLARE_API_TOKEN"}
    result = run_cli("bind", "--env", "staging", env=env)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.startswith("error: CLOUDFLARE_API_TOKEN is not set\n")
    assert cf_state.requests() == []

    bad = "tok_SECRET_wrong_token_value_123456"
    result = run_cli("bind", "--env", "staging", env={**cf_env, "CLOUDFLARE_API_TOKEN": bad})
    assert result.exit_code == 3
    assert "HTTP 401" in result.stderr
    assert bad not in result.output


def test_bind_finishes_when_30_percent_of_calls_answer_429_or_html_503(
    run_cli: RunCli, cf_env: dict[str, str], cf_state: EmulatorState, cf_seed: Code24Seed,
    namespace: str,
) -> None:  # fmt: skip
    cf_state.fail_ratio(0.3, kinds=(429, "html503"), seed=4, retry_after=0.05)
    result = run_cli("bind", "--env", "staging", "--json", env=cf_env)
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == [
        row(alias, "created", [MULTI_MODULE_SECRET] if alias == "developer-worker" else [])
        for alias in ALIASES
    ]
    faults = cf_state.counters()["faults"]
    assert faults["429"] > 0
    assert faults["html503"] > 0
    assert cf_state.namespace_script_names(cf_seed.account_id, NAMESPACE) == sorted(ALIASES)
    # Each module copied intact despite the retries.
    copied = cf_state.namespace_script(cf_seed.account_id, NAMESPACE, "developer-worker")
    source = cf_state.account_script(cf_seed.account_id, MULTI_MODULE_SCRIPT)
    assert copied is not None and source is not None
    assert {n: m.content for n, m in copied.modules.items()} == {
        n: m.content for n, m in source.modules.items()
    }
    # The second run under the same weather uploads nothing.
    cf_state.clear_requests()
    rows = bind_json(run_cli, cf_env)
    assert [r["action"] for r in rows] == ["unchanged"] * 5
    assert writes(cf_state) == []


def test_a_failing_worker_does_not_stop_the_others_and_a_rerun_finishes(
    run_cli: RunCli, cf_env: dict[str, str], cf_state: EmulatorState, cf_seed: Code24Seed,
    namespace: str, tmp_path: Path,
) -> None:  # fmt: skip
    def rename(data: dict[str, Any]) -> None:
        data["workers"]["designer-worker"]["script"] = "designer-v2-{env}"

    config = write_config(tmp_path, rename)
    result = run_cli("bind", "--env", "staging", "--json", env=cf_env, config=config)
    assert result.exit_code == 3
    rows = json.loads(result.stdout)
    failed = rows[3]
    assert failed["alias"] == "designer-worker"
    assert failed["action"] == "failed"
    assert failed["source"] == "script designer-v2-staging"
    assert failed["code"] == 10007
    assert failed["error"] == "the account Worker designer-v2-staging to copy does not exist"
    assert failed["hint"].startswith("check workers.designer-worker.script in ")
    assert [r["action"] for r in rows] == ["created", "created", "created", "failed", "created"]
    assert (
        "failed: designer-worker (API error 10007): the account Worker designer-v2-staging to copy"
        in result.stderr
    )
    assert result.stderr.endswith(
        "error: 1 of 5 worker(s) failed to bind: designer-worker\n"
        "  hint: fix what the messages above say, then rerun `code24ctl bind --env staging`: "
        "workers already bound are left unchanged\n"
    )
    assert cf_state.namespace_script_names(cf_seed.account_id, NAMESPACE) == sorted(
        set(ALIASES) - {"designer-worker"}
    )

    cf_state.add_account_script(
        cf_seed.account_id, "designer-v2-staging",
        {"worker.js": ("export default {fetch() { return Response.json({}); }};\n",
                       "application/javascript+module")},
        main_module="worker.js",
    )  # fmt: skip
    result = run_cli("bind", "--env", "staging", "--json", env=cf_env, config=config)
    assert result.exit_code == 0, result.stderr
    assert [r["action"] for r in json.loads(result.stdout)] == ["unchanged"] * 3 + [
        "created", "unchanged",
    ]  # fmt: skip


# --------------------------------------------------------------------------------------------
# local modules (path)


def test_path_workers_upload_a_folder_and_a_single_file(
    run_cli: RunCli, cf_env: dict[str, str], cf_state: EmulatorState, cf_seed: Code24Seed,
    namespace: str, tmp_path: Path,
) -> None:  # fmt: skip
    folder = tmp_path / "workers" / "hello"
    (folder / "lib").mkdir(parents=True)
    (folder / "index.js").write_text('import {greet} from "./lib/greet.js";\nexport default {};\n')
    (folder / "lib" / "greet.js").write_text("export const greet = () => 'hi';\n")
    (folder / "data.json").write_text('{"a": 1}\n')
    (folder / "README.md").write_text("not a module\n")
    (folder / ".env").write_text("SECRET=1\n")
    (folder / "package.json").write_text("{}\n")
    (tmp_path / "single.mjs").write_text("export default {fetch() {}};\n")

    def local(data: dict[str, Any]) -> None:
        data["workers"]["brand-worker"] = {"path": "workers/hello"}
        data["workers"]["designer-worker"] = {"path": "single.mjs"}

    config = write_config(tmp_path, local)
    rows = bind_json(run_cli, cf_env, "brand-worker", "designer-worker", config=config)
    assert rows == [
        row("brand-worker", "created", source="path workers/hello"),
        row("designer-worker", "created", source="path single.mjs"),
    ]
    upload = cf_state.requests(method="PUT", path_contains="/scripts/brand-worker")[0]
    parts = upload.parts or []
    assert [(p.name, p.filename, p.content_type, p.data) for p in parts[:3]] == [
        ("files", "data.json", "application/json", b'{"a": 1}\n'),
        ("files", "index.js", "application/javascript+module",
         b'import {greet} from "./lib/greet.js";\nexport default {};\n'),
        ("files", "lib/greet.js", "application/javascript+module",
         b"export const greet = () => 'hi';\n"),
    ]  # fmt: skip
    assert (parts[3].name, parts[3].filename, parts[3].content_type) == (
        "metadata", None, "application/json",
    )  # fmt: skip
    assert json.loads(parts[3].data) == {
        "main_module": "index.js",
        "bindings": [],
        "keep_bindings": ["secret_text", "secret_key"],
        "compatibility_date": "2025-06-01",
    }
    single = cf_state.requests(method="PUT", path_contains="/scripts/designer-worker")[0]
    assert [(p.name, p.filename, p.content_type) for p in single.parts or []] == [
        ("files", "single.mjs", "application/javascript+module"),
        ("metadata", None, "application/json"),
    ]
    assert json.loads((single.parts or [])[1].data)["main_module"] == "single.mjs"

    # Unchanged on disk: nothing uploaded. One file edited: only that worker goes up.
    cf_state.clear_requests()
    rows = bind_json(run_cli, cf_env, "brand-worker", "designer-worker", config=config)
    assert [r["action"] for r in rows] == ["unchanged", "unchanged"]
    assert writes(cf_state) == []
    (folder / "lib" / "greet.js").write_text("export const greet = () => 'hello';\n")
    rows = bind_json(run_cli, cf_env, "brand-worker", "designer-worker", config=config)
    assert [(r["action"], r["changes"]) for r in rows] == [
        ("updated", ["modules"]), ("unchanged", []),
    ]  # fmt: skip


def test_a_path_that_does_not_exist_fails_that_worker_only(
    run_cli: RunCli, cf_env: dict[str, str], namespace: str, tmp_path: Path
) -> None:
    def local(data: dict[str, Any]) -> None:
        data["workers"]["brand-worker"] = {"path": "nowhere"}

    config = write_config(tmp_path, local)
    result = run_cli("bind", "--env", "staging", "--json", env=cf_env, config=config)
    assert result.exit_code == 3
    rows = json.loads(result.stdout)
    assert rows[2] == row(
        "brand-worker", "failed", source="path nowhere",
        error="path nowhere: no such file or folder",
        hint="a worker's `path` is relative to the config file's folder",
    )  # fmt: skip
    assert [r["action"] for r in rows] == ["created", "created", "failed", "created", "created"]


# --------------------------------------------------------------------------------------------
# unbind and secret put


def test_unbind_asks_and_refuses_without_a_terminal(
    run_cli: RunCli, cf_env: dict[str, str], cf_state: EmulatorState, cf_seed: Code24Seed,
    namespace: str,
) -> None:  # fmt: skip
    bind_json(run_cli, cf_env)
    cf_state.clear_requests()

    refused = run_cli("unbind", "brand-worker", "--env", "staging", env=cf_env)
    assert refused.exit_code == 2
    assert refused.stdout == ""
    assert refused.stderr == (
        f"dispatch namespace {NAMESPACE} holds 1 of them: brand-worker\n"
        "error: refusing to continue without confirmation: no terminal to ask on\n"
        "  hint: rerun with --yes if you are sure\n"
    )
    assert writes(cf_state) == []
    assert "brand-worker" in cf_state.namespace_script_names(cf_seed.account_id, NAMESPACE)

    done = run_cli(
        "unbind", "brand-worker", "old-worker", "--yes", "--json", "--env", "staging", env=cf_env
    )
    assert done.exit_code == 0, done.stderr
    assert json.loads(done.stdout) == [
        {"alias": "brand-worker", "action": "deleted", "error": None, "code": None, "hint": None},
        {"alias": "old-worker", "action": "not-bound", "error": None, "code": None, "hint": None},
    ]
    assert writes(cf_state) == [f"DELETE {SCRIPTS}/brand-worker"]
    assert cf_state.namespace_script_names(cf_seed.account_id, NAMESPACE) == sorted(
        set(ALIASES) - {"brand-worker"}
    )


def test_unbind_dry_run_and_bad_names(
    run_cli: RunCli, cf_env: dict[str, str], cf_state: EmulatorState, namespace: str
) -> None:
    bind_json(run_cli, cf_env, "brand-worker")
    cf_state.clear_requests()
    result = run_cli("unbind", "brand-worker", "--dry-run", "--env", "staging", env=cf_env)
    assert result.exit_code == 0, result.stderr
    assert [line.split() for line in result.stdout.splitlines()] == [
        ["alias", "action"], ["brand-worker", "would-delete"],
    ]  # fmt: skip
    assert writes(cf_state) == []

    bad = run_cli("unbind", "Brand Worker", "--yes", "--env", "staging", env=cf_env)
    assert bad.exit_code == 2
    assert bad.stderr.startswith("error: not a valid Worker name: Brand Worker\n")
    assert cf_state.requests(method="DELETE") == []


def test_secret_put_errors(
    run_cli: RunCli, cf_env: dict[str, str], cf_state: EmulatorState, namespace: str
) -> None:
    missing = run_cli(
        "secret", "put", "brand-worker", "API_KEY", "--env", "staging", env=cf_env, input="v"
    )
    assert missing.exit_code == 3
    assert "Cloudflare API error 10007" in missing.stderr
    assert "run `code24ctl bind`" in missing.stderr

    bind_json(run_cli, cf_env, "brand-worker")
    empty = run_cli(
        "secret", "put", "brand-worker", "API_KEY", "--env", "staging", env=cf_env, input="\n"
    )
    assert empty.exit_code == 2
    assert empty.stderr == "error: the secret value is empty; nothing was set\n"

    bad = run_cli("secret", "put", "brand-worker", "API-KEY", "--env", "staging", env=cf_env)
    assert bad.exit_code == 2
    assert bad.stderr.startswith("error: 'API-KEY' is not a valid secret name\n")

    ok = run_cli(
        "secret", "put", "brand-worker", "API_KEY", "--json", "--env", "staging",
        env=cf_env, input="line one\nline two\n",
    )  # fmt: skip
    assert ok.exit_code == 0, ok.stderr
    assert json.loads(ok.stdout) == {
        "namespace": NAMESPACE, "alias": "brand-worker", "name": "API_KEY", "type": "secret_text",
        "set": True,
    }  # fmt: skip
    assert "line one" not in ok.output
    request = cf_state.requests(method="PUT", path_contains="/secrets")[-1]
    assert request.json == {"name": "API_KEY", "text": "line one\nline two", "type": "secret_text"}


# --------------------------------------------------------------------------------------------
# the pacer on its own


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_pacer_allows_the_budget_minus_headroom_per_sliding_window() -> None:
    clock = FakeClock()
    pacer = Pacer(20, 10.0, headroom=0.25, clock=clock)
    assert pacer.limit == 15
    assert [pacer.reserve() for _ in range(15)] == [0.0] * 15
    assert pacer.reserve() == pytest.approx(10.0)
    clock.now += 4.0
    assert pacer.reserve() == pytest.approx(6.0)
    clock.now += 6.0  # the first 15 slots leave the window together
    assert [pacer.reserve() for _ in range(15)] == [0.0] * 15
    assert pacer.stats.sent == 30


def test_pacer_pause_holds_every_thread() -> None:
    pacer = Pacer(1000, 1.0, headroom=0.0)
    pacer.pause(0.3)
    finished: list[float] = []
    start = time.monotonic()
    threads = [
        threading.Thread(target=lambda: (pacer.acquire(), finished.append(time.monotonic())))
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert len(finished) == 4
    assert min(finished) - start >= 0.29


def test_retry_after_forms() -> None:
    assert retry_after_seconds({"Retry-After": "7"}) == 7.0
    assert retry_after_seconds({"retry-after": "0.25"}) == 0.25
    assert retry_after_seconds({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    assert retry_after_seconds({"Retry-After": "soon"}) is None
    assert retry_after_seconds({}) is None
    later = email.utils.formatdate(time.time() + 30, usegmt=True)
    hinted = retry_after_seconds({"Retry-After": later})
    assert hinted is not None and 25 < hinted <= 30


def test_backoff_grows_and_is_capped() -> None:
    policy = RetryPolicy(base_delay_s=1.0, max_delay_s=8.0)
    for retry, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (9, 8.0)]:
        delay = policy.backoff(retry)
        assert ceiling / 2 <= delay <= ceiling
