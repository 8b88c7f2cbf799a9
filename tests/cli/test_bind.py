"""``code24ctl bind`` / ``unbind`` / ``secret put`` end to end: the CLI over real HTTP to the
Cloudflare emulator (``CLOUDFLARE_BASE_URL``), plus the pacer alone."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from tests.emulator.seeds import (
    ACCOUNT_ID,
    MULTI_MODULE_SCRIPT,
    MULTI_MODULE_SECRET,
    MULTI_MODULE_SECRET_VALUE,
    Code24Seed,
)
from tests.emulator.state import EmulatorState
from tests.support.builders import argv, rows_of, words
from tests.support.cli import REPO_CONFIG, RunCli
from tests.support.staging import ALIASES, NAMESPACE, STAGING_SCRIPTS, write_config, writes

SCRIPTS = f"/accounts/{ACCOUNT_ID}/workers/dispatch/namespaces/{NAMESPACE}/scripts"
JS = "application/javascript+module"


def es_module(name: str, source: str) -> dict[str, tuple[str, str]]:
    """A Worker of one ES module: what ``add_account_script`` takes as its modules."""
    return {name: (source, JS)}


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
        "secret_keys_to_set": [],
        "carries": [],
        "dropped_schedules": [],
        "dropped_settings": [],
    }
    base.update(extra)
    return base


#: What the repo's config turns on in every copy (its platform-wide ``observability``).
LOGS_ON = {"enabled": True, "head_sampling_rate": 1.0}


def tags(alias: str) -> list[str]:
    """The tags every Worker code24ctl writes on staging carries."""
    return [
        "code24ctl-platform:code24",
        "code24ctl-environment:staging",
        f"code24ctl-alias:{alias}",
    ]


def bind_json(run_cli: RunCli, env: dict[str, str], *args: str, **kw: Any) -> list[Any]:
    result = run_cli("bind", "--env", "staging", "--json", *args, env=env, **kw)
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert (document["command"], document["environment"]) == ("bind", "staging")
    rows: list[Any] = document["workers"]
    return rows


@pytest.fixture
def namespace(cf_state: EmulatorState, cf_seed: Code24Seed) -> str:
    cf_state.add_namespace(cf_seed.account_id, NAMESPACE)
    return NAMESPACE


# --------------------------------------------------------------------------------------------
# copies of account Workers


def test_bind_copies_every_worker_and_the_multipart_body_is_exact(
    run_cli: RunCli,
    cf_env: dict[str, str],
    cf_state: EmulatorState,
    cf_seed: Code24Seed,
    namespace: str,
) -> None:
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
        ("files", "prompts.json", "text/plain"),
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
        "observability": LOGS_ON,
        "compatibility_date": "2024-11-11",
        "tags": tags("developer-worker"),
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
    assert rows_of(result.stdout) == words(
        "alias action source secrets to set",
        "competitive-analysis created script competitive-analysis-worker-staging -",
        "market-research created script market-research-worker-staging -",
        "brand-worker created script brand-worker-staging -",
        "designer-worker created script designer-worker-staging -",
        "developer-worker created script advanced-developer-worker-staging OPENAI_API_KEY",
    )
    assert _without_progress(result.stderr) == (
        f"5 created in dispatch namespace {NAMESPACE}\n"
        "1 secret(s) still to set (values cannot be copied): "
        "`code24ctl workers --env staging` lists them\n"
    )


def test_second_bind_uploads_nothing_and_secrets_survive_updates(
    run_cli: RunCli,
    cf_env: dict[str, str],
    cf_state: EmulatorState,
    cf_seed: Code24Seed,
    namespace: str,
) -> None:
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
        *argv(f"secret put developer-worker {MULTI_MODULE_SECRET} --env staging"),
        env=cf_env,
        input=value + "\n",
    )
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
    modules["lib/render.js"] = (b"export function render() { return {v: 2}; }\n", JS)
    cf_state.add_account_script(
        cf_seed.account_id,
        MULTI_MODULE_SCRIPT,
        modules,
        main_module="index.js",
        bindings=[b for b in source.public_bindings() if b["type"] != "secret_text"],
        compatibility_date="2024-11-11",
        compatibility_flags=["nodejs_compat", "url_standard"],
    )
    cf_state.clear_requests()
    rows = bind_json(run_cli, cf_env)
    assert rows == [
        row(alias, "unchanged")
        if alias != "developer-worker"
        else row(
            alias,
            "updated",
            changes=[
                {
                    "field": "modules",
                    "path": "module lib/render.js",
                    "action": "update",
                    "old": label(
                        source.modules["lib/render.js"].content, "application/javascript+module"
                    ),
                    "new": label(modules["lib/render.js"][0], "application/javascript+module"),
                },
                {
                    "field": "compatibility_flags",
                    "path": "compatibility_flags",
                    "action": "update",
                    "old": ["nodejs_compat"],
                    "new": ["nodejs_compat", "url_standard"],
                },
            ],
        )
        for alias in ALIASES
    ]
    assert writes(cf_state) == [f"PUT {SCRIPTS}/developer-worker"]
    copied = cf_state.namespace_script(cf_seed.account_id, NAMESPACE, "developer-worker")
    assert copied is not None
    assert copied.secrets == {MULTI_MODULE_SECRET: value}
    assert copied.modules["lib/render.js"].content == modules["lib/render.js"][0]


def test_dry_run_writes_nothing(
    run_cli: RunCli,
    cf_env: dict[str, str],
    cf_state: EmulatorState,
    cf_seed: Code24Seed,
    namespace: str,
) -> None:
    rows = bind_json(run_cli, cf_env, "--dry-run")
    env_binding = "binding ENVIRONMENT (plain_text)"
    assert rows == [
        row(
            alias,
            "would-create",
            [MULTI_MODULE_SECRET] if alias == "developer-worker" else [],
            carries=[
                "observability (Workers Logs on, head_sampling_rate 1)",
                f"tags ({', '.join(tags(alias))})",
                env_binding,
                *(["binding CACHE (kv_namespace)"] if alias == "developer-worker" else []),
            ],
        )
        for alias in ALIASES
    ]
    assert writes(cf_state) == []
    assert cf_state.namespace_script_names(cf_seed.account_id, NAMESPACE) == []

    bind_json(run_cli, cf_env)
    cf_state.add_account_script(
        cf_seed.account_id,
        "brand-worker-staging",
        es_module("worker.js", "export default {fetch() { return Response.json({v: 2}); }};\n"),
        main_module="worker.js",
        bindings=[{"type": "plain_text", "name": "ENVIRONMENT", "text": "staging"}],
    )
    cf_state.clear_requests()
    result = run_cli("bind", "--env", "staging", "--dry-run", env=cf_env)
    assert result.exit_code == 0, result.stderr
    source = cf_state.account_script(cf_seed.account_id, "brand-worker-staging")
    held = cf_state.namespace_script(cf_seed.account_id, NAMESPACE, "brand-worker")
    assert source is not None and held is not None
    old = label(held.modules["worker.js"].content, JS)
    new = label(source.modules["worker.js"].content, JS)
    # What changes, old -> new, under the worker it belongs to.
    assert result.stdout.splitlines()[-2:] == [
        "~ worker brand-worker (script brand-worker-staging)",
        f'    ~ module worker.js: "{old}" -> "{new}"',
    ]
    assert _without_progress(result.stderr).splitlines()[0] == (
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
        f"GET /accounts/{cf_seed.account_id}/workers/dispatch/namespaces/{NAMESPACE}",
        # the listing that looks for a near name ("did you mean"); there is none
        f"GET /accounts/{cf_seed.account_id}/workers/dispatch/namespaces",
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
    run_cli: RunCli,
    cf_env: dict[str, str],
    cf_state: EmulatorState,
    cf_seed: Code24Seed,
    namespace: str,
) -> None:
    rows = bind_json(run_cli, cf_env, "market-research", "brand-worker", "market-research")
    assert rows == [row("market-research", "created"), row("brand-worker", "created")]
    assert cf_state.namespace_script_names(cf_seed.account_id, NAMESPACE) == [
        "brand-worker",
        "market-research",
    ]


def test_unknown_alias_is_exit_2_before_any_api_call(
    run_cli: RunCli, cf_env: dict[str, str], cf_state: EmulatorState, namespace: str
) -> None:
    result = run_cli("bind", "brand-worker", "brand-wrker", "--env", "staging", env=cf_env)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == (
        "error: unknown worker alias: brand-wrker; did you mean 'brand-worker'?\n"
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
    run_cli: RunCli,
    cf_env: dict[str, str],
    cf_state: EmulatorState,
    cf_seed: Code24Seed,
    namespace: str,
) -> None:
    cf_state.fail_ratio(0.3, kinds=(429, "html503"), seed=4, retry_after=0.05)
    result = run_cli("bind", "--env", "staging", "--json", env=cf_env)
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["workers"] == [
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
    run_cli: RunCli,
    cf_env: dict[str, str],
    cf_state: EmulatorState,
    cf_seed: Code24Seed,
    namespace: str,
    tmp_path: Path,
) -> None:
    def rename(data: dict[str, Any]) -> None:
        data["workers"]["designer-worker"]["script"] = "designer-v2-{env}"

    config = write_config(tmp_path, rename)
    result = run_cli("bind", "--env", "staging", "--json", env=cf_env, config=config)
    assert result.exit_code == 3
    rows = json.loads(result.stdout)["workers"]
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
    bound = [alias for alias in ALIASES if alias != "designer-worker"]
    assert result.stderr.endswith(
        "error: 1 of 5 worker(s) failed to bind: designer-worker\n"
        "  hint: fix what the messages above say, then rerun `code24ctl bind --env staging`: "
        "workers already bound are left unchanged\n"
        "changes already made:\n"
        + "".join(
            f"  worker {alias}: created (from script {STAGING_SCRIPTS[alias]})\n" for alias in bound
        )
    )
    assert cf_state.namespace_script_names(cf_seed.account_id, NAMESPACE) == sorted(
        set(ALIASES) - {"designer-worker"}
    )

    cf_state.add_account_script(
        cf_seed.account_id,
        "designer-v2-staging",
        es_module("worker.js", "export default {fetch() { return Response.json({}); }};\n"),
        main_module="worker.js",
    )
    result = run_cli("bind", "--env", "staging", "--json", env=cf_env, config=config)
    assert result.exit_code == 0, result.stderr
    assert [r["action"] for r in json.loads(result.stdout)["workers"]] == ["unchanged"] * 3 + [
        "created",
        "unchanged",
    ]


# --------------------------------------------------------------------------------------------
# local modules (path)


def test_path_workers_upload_a_folder_and_a_single_file(
    run_cli: RunCli,
    cf_env: dict[str, str],
    cf_state: EmulatorState,
    cf_seed: Code24Seed,
    namespace: str,
    tmp_path: Path,
) -> None:
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
        ("files", "data.json", "text/plain", b'{"a": 1}\n'),
        (
            "files",
            "index.js",
            "application/javascript+module",
            b'import {greet} from "./lib/greet.js";\nexport default {};\n',
        ),
        (
            "files",
            "lib/greet.js",
            "application/javascript+module",
            b"export const greet = () => 'hi';\n",
        ),
    ]
    assert (parts[3].name, parts[3].filename, parts[3].content_type) == (
        "metadata",
        None,
        "application/json",
    )
    assert json.loads(parts[3].data) == {
        "main_module": "index.js",
        "bindings": [],
        "keep_bindings": ["secret_text", "secret_key"],
        "observability": LOGS_ON,
        "compatibility_date": "2025-06-01",
        "tags": tags("brand-worker"),
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
    assert [(r["action"], [c["path"] for c in r["changes"]]) for r in rows] == [
        ("updated", ["module lib/greet.js"]),
        ("unchanged", []),
    ]


def test_a_path_that_does_not_exist_fails_that_worker_only(
    run_cli: RunCli, cf_env: dict[str, str], namespace: str, tmp_path: Path
) -> None:
    def local(data: dict[str, Any]) -> None:
        data["workers"]["brand-worker"] = {"path": "nowhere"}

    config = write_config(tmp_path, local)
    result = run_cli("bind", "--env", "staging", "--json", env=cf_env, config=config)
    assert result.exit_code == 2  # a local problem, not the API's
    rows = json.loads(result.stdout)["workers"]
    assert rows[2] == row(
        "brand-worker",
        "failed",
        source="path nowhere",
        error="path nowhere: no such file or folder",
        hint="a worker's `path` is relative to the config file's folder",
    )
    assert [r["action"] for r in rows] == ["created", "created", "failed", "created", "created"]


# --------------------------------------------------------------------------------------------
# unbind and secret put


def test_unbind_asks_and_refuses_without_a_terminal(
    run_cli: RunCli,
    cf_env: dict[str, str],
    cf_state: EmulatorState,
    cf_seed: Code24Seed,
    namespace: str,
) -> None:
    bind_json(run_cli, cf_env)
    cf_state.clear_requests()

    refused = run_cli("unbind", "brand-worker", "--env", "staging", env=cf_env)
    assert refused.exit_code == 2
    assert refused.stdout == ""
    assert refused.stderr == (
        f"dispatch namespace {NAMESPACE} holds 1 of them: brand-worker\n"
        "warning: /elite/brand still routes to brand-worker in staging: the live dispatcher "
        "code24-dynamic-dispatcher-staging would answer there with the fallback "
        "(worker_not_found) until it is bound again or the route is removed\n"
        "error: refusing to continue without confirmation: no terminal to ask on\n"
        "  hint: rerun with --yes if you are sure\n"
    )
    assert writes(cf_state) == []
    assert "brand-worker" in cf_state.namespace_script_names(cf_seed.account_id, NAMESPACE)

    typo = run_cli("unbind", "brand-wroker", "--yes", "--env", "staging", env=cf_env)
    assert typo.exit_code == 2
    assert typo.stderr.startswith(
        f"error: not in dispatch namespace {NAMESPACE} nor in the config: brand-wroker; "
        "did you mean 'brand-worker'?\n"
    )
    assert writes(cf_state) == []

    done = run_cli("unbind", "brand-worker", "--yes", "--json", "--env", "staging", env=cf_env)
    assert done.exit_code == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["summary"] == {"deleted": 1, "would_delete": 0, "not_bound": 0, "failed": 0}
    assert document["workers"] == [
        {"alias": "brand-worker", "action": "deleted", "error": None, "code": None, "hint": None},
    ]
    again = run_cli("unbind", "brand-worker", "--yes", "--json", "--env", "staging", env=cf_env)
    assert [row["action"] for row in json.loads(again.stdout)["workers"]] == ["not-bound"]
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
    assert rows_of(result.stdout) == words("alias action", "brand-worker would-delete")
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
    assert missing.exit_code == 2  # checked against the namespace before any write
    assert missing.stderr == (
        f"error: no Worker 'brand-worker' in dispatch namespace {NAMESPACE}\n"
        "  hint: run `code24ctl bind brand-worker --env staging` first\n"
    )
    assert writes(cf_state) == []

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
        *argv("secret put brand-worker API_KEY --json --env staging"),
        env=cf_env,
        input="line one\nline two\n",
    )
    assert ok.exit_code == 0, ok.stderr
    assert json.loads(ok.stdout) == {
        "command": "secret put",
        "environment": "staging",
        "namespace": NAMESPACE,
        "worker": "brand-worker",
        "secrets": [{"name": "API_KEY", "type": "secret_text"}],
        "summary": {"set": 1},
    }
    assert "line one" not in ok.output
    request = cf_state.requests(method="PUT", path_contains="/secrets")[-1]
    assert request.json == {"name": "API_KEY", "text": "line one\nline two", "type": "secret_text"}


def label(content: bytes, content_type: str) -> str:
    """How a diff shows a module: its sha256 prefix and content type."""
    return f"sha256:{hashlib.sha256(content).hexdigest()[:12]} {content_type}"


# --------------------------------------------------------------------------------------------
# copies that keep everything the API lets them keep

RICH_SOURCE = """export class Room { constructor(state) { this.state = state; } }
export default { fetch() { return Response.json({ok: true}); } };
"""
SERVICE_WORKER_SOURCE = """addEventListener("fetch", (event) => {
  event.respondWith(new Response('{"ok":true}', {headers: {"content-type": "application/json"}}));
});
"""
OBSERVABILITY = {
    "enabled": True,
    "head_sampling_rate": 0.25,
    "logs": {"enabled": True, "invocation_logs": True, "head_sampling_rate": 0.5},
}
SIGNING_KEY = {
    "type": "secret_key",
    "name": "SIGNING_KEY",
    "algorithm": {"name": "HMAC", "hash": "SHA-256"},
    "format": "raw",
    "usages": ["sign", "verify"],
    "key_base64": "c2VjcmV0LWtleS1tYXRlcmlhbA==",
}


def _seed_rich_and_service_worker(state: EmulatorState, account_id: str) -> None:
    state.add_account_script(
        account_id,
        "rich-worker-staging",
        {"index.js": (RICH_SOURCE, "application/javascript+module")},
        main_module="index.js",
        bindings=[
            {"type": "plain_text", "name": "ENVIRONMENT", "text": "staging"},
            {"type": "durable_object_namespace", "name": "ROOMS", "class_name": "Room"},
            SIGNING_KEY,
        ],
        extra_metadata={
            "tags": ["team:ai", "customer-7"],
            "observability": OBSERVABILITY,
            "logpush": True,
            "placement": {"mode": "smart"},
            "tail_consumers": [{"service": "log-tail"}],
            "limits": {"cpu_ms": 50},
            "migrations": {"new_tag": "v3", "new_classes": ["Room"]},
        },
    )
    state.add_account_script(
        account_id,
        "sw-worker-staging",
        {"worker.js": (SERVICE_WORKER_SOURCE, "application/javascript")},
        main_module="",
        extra_metadata={"body_part": "worker.js"},
    )


def _rich_config(tmp_path: Path) -> Path:
    def change(data: dict[str, Any]) -> None:
        data["workers"]["brand-worker"]["script"] = "rich-worker-{env}"
        data["workers"]["designer-worker"]["script"] = "sw-worker-{env}"

    return write_config(tmp_path, change)


def test_bind_copies_settings_tags_a_durable_object_class_and_a_service_worker(
    tmp_path: Path,
    run_cli: RunCli,
    cf_env: dict[str, str],
    cf_state: EmulatorState,
    cf_seed: Code24Seed,
    namespace: str,
) -> None:
    _seed_rich_and_service_worker(cf_state, cf_seed.account_id)
    config = _rich_config(tmp_path)

    rows = bind_json(run_cli, cf_env, "brand-worker", "designer-worker", config=config)

    assert rows == [
        row(
            "brand-worker",
            "created",
            source="script rich-worker-staging",
            secret_keys_to_set=["SIGNING_KEY"],
        ),
        row("designer-worker", "created", source="script sw-worker-staging"),
    ]
    (rich,) = cf_state.requests(method="PUT", path_contains="/scripts/brand-worker")
    parts = rich.parts or []
    assert [(p.name, p.filename, p.content_type) for p in parts] == [
        ("files", "index.js", "application/javascript+module"),
        ("metadata", None, "application/json"),
    ]
    assert parts[0].data == RICH_SOURCE.encode()
    assert json.loads(parts[1].data) == {
        "main_module": "index.js",
        "compatibility_date": "2024-09-23",
        "bindings": [
            {"type": "plain_text", "name": "ENVIRONMENT", "text": "staging"},
            {"type": "durable_object_namespace", "name": "ROOMS", "class_name": "Room"},
        ],
        "keep_bindings": ["secret_text", "secret_key"],
        # The config's Workers Logs keys win; the source's others (logs) stay.
        "observability": OBSERVABILITY | LOGS_ON,
        "tail_consumers": [{"service": "log-tail"}],
        "logpush": True,
        "placement": {"mode": "smart"},
        "limits": {"cpu_ms": 50},
        "tags": ["team:ai", "customer-7", *tags("brand-worker")],
        # A first upload creates the class the Worker implements (SQLite-backed: see bind.py).
        "migrations": {"new_tag": "code24ctl-v1", "new_sqlite_classes": ["Room"]},
    }
    # The key material of a secret_key is never readable, so it is in no request we sent.
    for record in cf_state.requests():
        assert SIGNING_KEY["key_base64"].encode() not in record.body

    (service,) = cf_state.requests(method="PUT", path_contains="/scripts/designer-worker")
    parts = service.parts or []
    assert [(p.name, p.filename, p.content_type) for p in parts] == [
        ("files", "worker.js", "application/javascript"),
        ("metadata", None, "application/json"),
    ]
    assert parts[0].data == SERVICE_WORKER_SOURCE.encode()
    assert json.loads(parts[1].data) == {
        "body_part": "worker.js",
        "compatibility_date": "2024-09-23",
        "bindings": [],
        "keep_bindings": ["secret_text", "secret_key"],
        "observability": LOGS_ON,
        "tags": tags("designer-worker"),
    }
    copy = cf_state.namespace_script(cf_seed.account_id, NAMESPACE, "designer-worker")
    assert copy is not None and (copy.body_part, copy.main_module) == ("worker.js", None)

    # Read back, both copies are what bind would upload: nothing more to do.
    cf_state.clear_requests()
    again = bind_json(run_cli, cf_env, "brand-worker", "designer-worker", config=config)
    assert [(r["action"], r["changes"]) for r in again] == [("unchanged", []), ("unchanged", [])]
    assert writes(cf_state) == []


def test_bind_dry_run_shows_what_each_copy_carries_and_the_secret_key_hint(
    tmp_path: Path,
    run_cli: RunCli,
    cf_env: dict[str, str],
    cf_state: EmulatorState,
    cf_seed: Code24Seed,
    namespace: str,
) -> None:
    _seed_rich_and_service_worker(cf_state, cf_seed.account_id)
    config = _rich_config(tmp_path)

    result = run_cli(
        "bind",
        "--env",
        "staging",
        "--dry-run",
        "brand-worker",
        "designer-worker",
        env={**cf_env, "COLUMNS": "300"},
        config=config,
    )

    assert result.exit_code == 0, result.stderr
    assert writes(cf_state) == []
    assert _without_progress(result.stderr).splitlines() == [
        f"dry run, nothing written: 2 would-create in dispatch namespace {NAMESPACE}",
        "brand-worker carries: observability (Workers Logs on, head_sampling_rate 1), "
        "tail_consumers, logpush, placement, limits, "
        f"tags (team:ai, customer-7, {', '.join(tags('brand-worker'))}), migrations (Room), "
        "binding ENVIRONMENT (plain_text), binding ROOMS (durable_object_namespace)",
        "designer-worker carries: observability (Workers Logs on, head_sampling_rate 1), "
        f"tags ({', '.join(tags('designer-worker'))})",
        "secret_key bindings still to set (WebCrypto keys; `secret put` cannot):",
        f"  brand-worker SIGNING_KEY: PUT .../dispatch/namespaces/{NAMESPACE}/scripts/"
        "brand-worker/secrets with type secret_key, algorithm, format, usages and the key",
    ]


def test_a_static_assets_binding_is_refused_by_name(
    tmp_path: Path,
    run_cli: RunCli,
    cf_env: dict[str, str],
    cf_state: EmulatorState,
    cf_seed: Code24Seed,
    namespace: str,
) -> None:
    cf_state.add_account_script(
        cf_seed.account_id,
        "rich-worker-staging",
        {"index.js": ("export default {};\n", "application/javascript+module")},
        main_module="index.js",
        bindings=[{"type": "assets", "name": "ASSETS"}],
    )
    config = _rich_config(tmp_path)

    result = run_cli(
        "bind", "--env", "staging", "--json", "brand-worker", env=cf_env, config=config
    )

    assert result.exit_code == 2
    (failed,) = json.loads(result.stdout)["workers"]
    assert failed["action"] == "failed"
    assert failed["error"] == (
        "Worker rich-worker-staging has a static-assets binding (ASSETS (assets)): "
        "bind cannot copy static assets"
    )
    assert writes(cf_state) == []


def test_too_many_tags_for_the_copy_is_refused_before_upload(
    tmp_path: Path,
    run_cli: RunCli,
    cf_env: dict[str, str],
    cf_state: EmulatorState,
    cf_seed: Code24Seed,
    namespace: str,
) -> None:
    own = [f"t{i}" for i in range(6)]
    cf_state.add_account_script(
        cf_seed.account_id,
        "rich-worker-staging",
        {"index.js": ("export default {};\n", "application/javascript+module")},
        main_module="index.js",
        extra_metadata={"tags": own},
    )
    config = _rich_config(tmp_path)

    result = run_cli(
        "bind", "--env", "staging", "--json", "brand-worker", env=cf_env, config=config
    )

    assert result.exit_code == 2
    (failed,) = json.loads(result.stdout)["workers"]
    assert failed["error"] == (
        "script rich-worker-staging has 6 tags; with code24ctl's 3 the copy would have 9, "
        "over Cloudflare's limit of 8"
    )
    assert writes(cf_state) == []


def test_workers_shows_stale_copies_and_unbind_stale_removes_them_after_confirmation(
    tmp_path: Path,
    run_cli: RunCli,
    cf_env: dict[str, str],
    cf_state: EmulatorState,
    cf_seed: Code24Seed,
    namespace: str,
) -> None:
    bind_json(run_cli, cf_env)
    # Someone else's Worker in the namespace (no code24ctl tags): never stale.
    cf_state.add_namespace_script(
        cf_seed.account_id,
        NAMESPACE,
        "tenant-7",
        {"w.js": ("export default {};\n", "application/javascript+module")},
        main_module="w.js",
    )

    def change(data: dict[str, Any]) -> None:
        del data["workers"]["designer-worker"]
        data["routes"] = [r for r in data["routes"] if r["worker"] != "designer-worker"]
        del data["environments"]["local"]["upstreams"]["designer-worker"]

    config = write_config(tmp_path, change)

    shown = run_cli("workers", "--env", "staging", "--json", env=cf_env, config=config)
    assert shown.exit_code == 0, shown.stderr
    assert [(r["alias"], r["status"]) for r in json.loads(shown.stdout)["workers"]][-2:] == [
        ("designer-worker", "stale"),
        ("tenant-7", "not-in-config"),
    ]
    human = run_cli("workers", "--env", "staging", env=cf_env, config=config)
    assert (
        f"1 Worker(s) in {NAMESPACE} were written by code24ctl for aliases the config no longer "
        "names (remove with `code24ctl unbind --stale`)"
    ) in " ".join(human.stderr.split())

    cf_state.clear_requests()
    refused = run_cli("unbind", "--stale", "--env", "staging", env=cf_env, config=config)
    assert refused.exit_code == 2
    assert refused.stderr.startswith(
        f"dispatch namespace {NAMESPACE} holds 1 of them: designer-worker\n"
    )
    assert writes(cf_state) == []

    done = run_cli(
        "unbind", "--stale", "--yes", "--json", "--env", "staging", env=cf_env, config=config
    )
    assert done.exit_code == 0, done.stderr
    assert json.loads(done.stdout)["workers"] == [
        {"alias": "designer-worker", "action": "deleted", "error": None, "code": None, "hint": None}
    ]
    assert writes(cf_state) == [f"DELETE {SCRIPTS}/designer-worker"]
    assert "tenant-7" in cf_state.namespace_script_names(cf_seed.account_id, NAMESPACE)

    both = run_cli("unbind", "x", "--stale", "--env", "staging", env=cf_env, config=config)
    assert both.exit_code == 2
    assert both.stderr.startswith("error: name the Workers to delete, or give --stale (not both)")


def _without_progress(stderr: str) -> str:
    """stderr without the per-worker progress lines printed when there is no terminal (one per
    Worker read, ``bind (reading): ...``, then one per upload, ``bind: ...``)."""
    return "".join(
        line for line in stderr.splitlines(True) if not line.startswith(("bind: ", "bind ("))
    )


def test_bind_warns_about_cron_schedules_and_an_uncarried_usage_model(
    run_cli: RunCli,
    cf_env: dict[str, str],
    cf_state: EmulatorState,
    cf_seed: Code24Seed,
    cf_inprocess_client: Any,
    namespace: str,
) -> None:
    # A copy keeps no cron triggers (wrangler drops them silently: workers-sdk #13840), and an
    # upload takes only usage_model standard (docs, multipart-upload-metadata).
    source = STAGING_SCRIPTS["brand-worker"]
    cf_state.set_schedules(cf_seed.account_id, source, ["*/30 * * * *", "0 3 * * *"])
    cf_inprocess_client.workers.scripts.script_and_version_settings.edit(
        source, account_id=cf_seed.account_id, settings={"usage_model": "unbound"}
    )
    cf_state.clear_requests()

    result = run_cli("bind", "brand-worker", "--env", "staging", env=cf_env)

    assert result.exit_code == 0, result.stderr
    notes = _without_progress(result.stderr).splitlines()
    assert (
        f"warning: brand-worker: script {source} runs on cron schedules (*/30 * * * *, "
        f"0 3 * * *); its copy in {NAMESPACE} keeps none: a Worker in a dispatch namespace runs "
        "only when the dispatcher calls it"
    ) in notes
    assert (
        "brand-worker: usage_model unbound is not carried: an upload takes only usage_model "
        "standard, which the copy runs on"
    ) in notes
    (upload,) = cf_state.requests(method="PUT")
    metadata = json.loads((upload.part("metadata") or pytest.fail("no metadata")).data)
    assert "usage_model" not in metadata
    rows = bind_json(run_cli, cf_env, "brand-worker", "--dry-run")
    assert rows[0]["dropped_schedules"] == ["*/30 * * * *", "0 3 * * *"]
    assert rows[0]["dropped_settings"] == ["usage_model unbound"]


# --------------------------------------------------------------------------------------------
# Workers Logs on the copies (observability)


def test_configured_observability_goes_to_every_copy_and_the_plan_shows_it(
    run_cli: RunCli, cf_env: dict[str, str], cf_state: EmulatorState, cf_seed: Code24Seed,
    namespace: str, tmp_path: Path,
) -> None:  # fmt: skip
    def change(data: dict[str, Any]) -> None:
        data["observability"] = {"enabled": True, "head_sampling_rate": 1}
        data["workers"]["designer-worker"]["observability"] = {"head_sampling_rate": 0.5}

    config = str(write_config(tmp_path, change))
    plan = run_cli("plan", "--env", "staging", "--config", config, env=cf_env)
    assert plan.exit_code == 0, plan.output
    assert (
        "       + worker designer-worker (script designer-worker-staging, observability (Workers "
        "Logs on, head_sampling_rate 0.5))"
    ) in plan.stdout.splitlines()
    assert (
        "       + worker brand-worker (script brand-worker-staging, observability (Workers Logs "
        "on, head_sampling_rate 1))"
    ) in plan.stdout.splitlines()

    rows = bind_json(run_cli, cf_env, "--config", config)
    assert {r["action"] for r in rows} == {"created"}
    for alias in ALIASES:
        copy = cf_state.namespace_script(cf_seed.account_id, NAMESPACE, alias)
        assert copy is not None
        rate = 0.5 if alias == "designer-worker" else 1
        assert copy.observability == {"enabled": True, "head_sampling_rate": rate}
    # Once there, nothing differs; a change of the setting is an update of the copies.
    assert {r["action"] for r in bind_json(run_cli, cf_env, "--config", config)} == {"unchanged"}

    def off(data: dict[str, Any]) -> None:
        change(data)
        data["observability"]["enabled"] = False

    config = str(write_config(tmp_path, off))
    plan = run_cli("plan", "--env", "staging", "--config", config, env=cf_env)
    assert (
        '           ~ observability: {"enabled": true, "head_sampling_rate": 1.0} -> '
        '{"enabled": false, "head_sampling_rate": 1.0}'
    ) in plan.stdout.splitlines()


def test_observability_sampling_outside_0_to_1_is_a_config_error(
    run_cli: RunCli, cf_env: dict[str, str], tmp_path: Path
) -> None:
    def change(data: dict[str, Any]) -> None:
        data["observability"] = {"head_sampling_rate": 2}

    config = str(write_config(tmp_path, change))
    result = run_cli("bind", "--env", "staging", "--config", config, env=cf_env)
    assert result.exit_code == 2, result.output
    assert "head_sampling_rate" in result.stderr
