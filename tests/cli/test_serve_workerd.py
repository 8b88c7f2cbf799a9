"""``code24ctl serve --runtime workerd``: the deployed dispatcher.js and the workers' own code.

Everything runs for real: ``python -m code24ctl serve --runtime workerd`` as a subprocess, one
workerd through the miniflare the tests install in tests/js (``CODE24_NODE_MODULES`` points the
runtime there, so nothing is installed from the network twice), and ``probe --env local``
through the CLI against it.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from code24ctl.cli.schemas import COMMAND_MODELS
from code24ctl.serve.workerd.bindings import (
    local_bindings,
    read_secrets,
    read_wrangler_config,
    wrangler_bindings,
)
from code24ctl.serve.workerd.node import MINIFLARE_VERSION
from tests.emulator.seeds import Code24Seed
from tests.emulator.state import EmulatorState
from tests.support.cli import REPO_ROOT, RunCli
from tests.support.http_servers import Answer, LocalServer
from tests.support.serve_process import ServeProcess, repo_config
from tests.support.staging import NAMESPACE, write_config, writes

SERVE = [sys.executable, "-m", "code24ctl", "serve"]
NODE_MODULES = REPO_ROOT / "tests" / "js" / "node_modules"


@pytest.fixture(autouse=True)
def _miniflare(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # Never skipped: tests/run.sh (and CI) install tests/js first.
    if not (NODE_MODULES / "miniflare" / "package.json").is_file():
        pytest.fail("tests/js/node_modules has no miniflare: run `npm ci --prefix tests/js`")
    monkeypatch.setenv("CODE24_NODE_MODULES", str(NODE_MODULES))
    monkeypatch.setenv("CODE24_CACHE_DIR", str(tmp_path / "cache"))


THROWER = """export default {
  async fetch() {
    throw new Error("the thrower worker always throws");
  },
};
"""
HTML = """export default {
  async fetch() {
    return new Response("<!DOCTYPE html><html><body><h1>Oops</h1></body></html>", {
      headers: { "content-type": "text/html" },
    });
  },
};
"""
KV = """export default {
  async fetch(request, env) {
    const note = (await request.json()).note;
    await env.NOTES.put(`note:${note}`, note);
    return Response.json({
      wrote: note,
      read_back: await env.NOTES.get(`note:${note}`),
      greeting: env.GREETING,
      token: env.API_TOKEN,
    });
  },
};
"""
KV_WRANGLER = """name = "kv-worker"
main = "index.js"
[vars]
GREETING = "hello"
[[kv_namespaces]]
binding = "NOTES"
id = "notes-local"
[ai]
binding = "AI"
"""
SERVICE_WORKER = """addEventListener("fetch", (event) => {
  event.respondWith(Response.json({ format: "service-worker", greeting: GREETING }));
});
"""
STORE = """export class Counter {
  constructor(state) {
    this.state = state;
  }
  async fetch() {
    const n = ((await this.state.storage.get("n")) ?? 0) + 1;
    await this.state.storage.put("n", n);
    return Response.json({ n });
  }
}

export default {
  async fetch(request, env) {
    await env.FILES.put("a.txt", "stored in r2");
    const file = await (await env.FILES.get("a.txt")).text();
    await env.DB.exec("CREATE TABLE IF NOT EXISTS notes (v TEXT)");
    await env.DB.prepare("INSERT INTO notes (v) VALUES (?)").bind("row").run();
    const { results } = await env.DB.prepare("SELECT count(*) AS c FROM notes").all();
    const stub = env.COUNTER.get(env.COUNTER.idFromName("one"));
    const counter = await (await stub.fetch("http://do/")).json();
    return Response.json({ file, rows: results[0].c, counter: counter.n });
  },
};
"""
STORE_WRANGLER = """[[r2_buckets]]
binding = "FILES"
bucket_name = "files"
[[d1_databases]]
binding = "DB"
database_name = "notes"
database_id = "notes-id"
[[durable_objects.bindings]]
name = "COUNTER"
class_name = "Counter"
"""
CALLER = """export default {
  async fetch(request, env) {
    const answer = await env.KV_WORKER.fetch("http://kv/note", {
      method: "POST",
      body: JSON.stringify({ note: "via service binding" }),
    });
    return Response.json({ called: await answer.json() });
  },
};
"""


def project(tmp_path: Path) -> Path:
    """A config whose workers have `path:` folders (and one alias with no code here)."""
    workers = tmp_path / "workers"
    files = {
        "thrower/index.js": THROWER,
        "html/index.js": HTML,
        "kv/index.js": KV,
        "kv/wrangler.toml": KV_WRANGLER,
        "kv/.dev.vars": 'API_TOKEN="local-secret"\n',
        "sw/worker.js": SERVICE_WORKER,
        "sw/wrangler.json": '{\n  // comments are allowed\n  "vars": {"GREETING": "hi"},\n}\n',
        "caller/index.js": CALLER,
        "caller/wrangler.toml": '[[services]]\nbinding = "KV_WORKER"\nservice = "kv"\n',
        "store/index.js": STORE,
        "store/wrangler.toml": STORE_WRANGLER,
    }
    for name, text in files.items():
        (workers / name).parent.mkdir(parents=True, exist_ok=True)
        (workers / name).write_text(text)
    data: dict[str, Any] = {
        "platform": "Test",
        "compatibility_date": "2025-06-01",
        "workers": {
            "thrower": {"path": "workers/thrower", "fallback": {"ok": False}},
            "html": {"path": "workers/html", "fallback": {"status": "degraded"}},
            "kv": {"path": "workers/kv"},
            "sw": {"path": "workers/sw"},
            "caller": {"path": "workers/caller"},
            "store": {"path": "workers/store"},
            "ghost": {"script": "ghost-worker"},
        },
        "routes": [
            {"prefix": "/thrower", "worker": "thrower", "probe": {"path": "/thrower/x"}},
            {"prefix": "/html", "worker": "html", "probe": {"path": "/html/page"}},
            {
                "prefix": "/kv",
                "worker": "kv",
                "probe": {"method": "POST", "path": "/kv/note", "json": {"note": "remember me"}},
            },
            {"prefix": "/sw", "worker": "sw", "probe": {"path": "/sw"}},
            {"prefix": "/caller", "worker": "caller", "probe": {"path": "/caller"}},
            {"prefix": "/store", "worker": "store", "probe": {"path": "/store"}},
            {"prefix": "/ghost", "worker": "ghost", "probe": {"path": "/ghost/x"}},
        ],
        "environments": {"local": {"base_url": "http://127.0.0.1:8799", "upstreams": {}}},
    }
    return write_config(tmp_path, data=data)


def get(port: int, path: str, method: str = "GET", body: bytes | None = None) -> Any:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        connection.request(method, path, body=body)
        answer = connection.getresponse()
        return answer.status, dict(answer.getheaders()), answer.read()
    finally:
        connection.close()


def probe_rows(run_cli: RunCli, config: Path, port: int) -> dict[str, dict[str, Any]]:
    result = run_cli(
        "probe",
        "--config",
        str(config),
        "--env",
        "local",
        "--base-url",
        f"http://127.0.0.1:{port}",
        "--json",
    )
    document = json.loads(result.stdout)
    return {row["route"]: row for row in document["routes"]}


def test_done_when_path_workers_behind_the_real_dispatcher(tmp_path: Path, run_cli: RunCli) -> None:
    """The issue's end-to-end check: serve --runtime workerd + probe --env local."""
    config = project(tmp_path)
    serve = ServeProcess(tmp_path, "--runtime", "workerd", config=config)
    try:
        rows = probe_rows(run_cli, config, serve.port)
        # A worker whose JavaScript throws.
        assert rows["/thrower"]["fallback_reason"] == "worker_error"
        assert rows["/thrower"]["body_excerpt"] == '{"ok":false}'
        assert rows["/thrower"]["outcome"] == "fail"
        # One that returns an HTML page: upstream_html with its fallback.
        assert rows["/html"]["fallback_reason"] == "upstream_html"
        assert json.loads(rows["/html"]["body_excerpt"]) == {"status": "degraded"}
        # One bound to a KV namespace reads back what it wrote (vars and secrets too).
        assert rows["/kv"]["outcome"] == "pass"
        assert json.loads(rows["/kv"]["body_excerpt"]) == {
            "wrote": "remember me",
            "read_back": "remember me",
            "greeting": "hello",
            "token": "local-secret",
        }
        # An alias without code: worker_not_found, as an empty namespace slot answers.
        assert rows["/ghost"]["fallback_reason"] == "worker_not_found"
        # Service-worker syntax, and a service binding to another alias.
        assert json.loads(rows["/sw"]["body_excerpt"]) == {
            "format": "service-worker",
            "greeting": "hi",
        }
        assert json.loads(rows["/caller"]["body_excerpt"])["called"]["read_back"] == (
            "via service binding"
        )
        # R2, D1 and a Durable Object of its own, kept across requests.
        assert json.loads(rows["/store"]["body_excerpt"]) == {
            "file": "stored in r2",
            "rows": 1,
            "counter": 1,
        }
        _, _, body = get(serve.port, "/store")
        assert json.loads(body) == {"file": "stored in r2", "rows": 2, "counter": 2}
        status, headers, body = get(serve.port, "/kv/again", "POST", b'{"note": "second"}')
        assert status == 200 and json.loads(body)["read_back"] == "second"
        assert headers["X-Code24-Worker"] == "kv"
    finally:
        assert serve.stop() == 0
    err = serve.stderr()
    assert err.startswith("code24ctl serve (workerd): environment local on http://127.0.0.1:")
    assert "  /ghost             -> ghost                  (no code: answers worker_not_found)" in (
        err
    )
    assert "  /sw                -> sw                     path workers/sw (service-worker)" in err
    assert "warning: kv runs without AI (ai): not emulated locally" in err
    assert "worker=thrower status=200 reason=worker_error" in err
    assert "worker=kv status=200 reason=- ms=" in err
    assert err.rstrip().endswith("serve stopped")
    info = serve.info
    COMMAND_MODELS["serve"].model_validate(info)
    assert info["runtime"] == "workerd"
    assert info["missing_bindings"] == {"kv": ["AI (ai): not emulated locally"]}
    assert info["upstreams"]["thrower"] == "path workers/thrower (modules)"


def test_demo_runs_javascript_workers_with_admin_port(tmp_path: Path) -> None:
    serve = ServeProcess(tmp_path, "--demo", "--runtime", "workerd", "--metrics-port", "0")
    try:
        status, headers, body = get(serve.port, "/elite/design/enhanced", "POST", b"{}")
        assert (status, headers["X-Code24-Fallback-Reason"]) == (200, "upstream_html")
        assert headers["X-Code24-Upstream-Status"] == "502"
        status, _, body = get(serve.port, "/api/market/research", "POST", b'{"region": "US"}')
        assert status == 200 and json.loads(body)["region"] == "US"
        admin = serve.info["admin_url"]
        port = int(admin.rsplit(":", 1)[1])
        # The dispatcher records after its answer is sent (D9): the second data point may
        # reach serve a moment after the answer did.
        deadline = time.monotonic() + 10
        while True:
            _, _, health = get(port, "/healthz")
            health_doc = json.loads(health)
            if health_doc["analytics_data_points"] >= 2 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert health_doc["runtime"] == "workerd" and health_doc["routes"] == 5
        assert health_doc["analytics_data_points"] == 2
        _, _, metrics = get(port, "/metrics")
        assert (
            'code24_dispatch_requests_total{fallback_reason="upstream_html",'
            'route="/elite/design",status="200",worker="designer-worker"} 1.0'
        ) in metrics.decode()
    finally:
        assert serve.stop(signal.SIGINT) == 0
    assert "demo: built-in sample JavaScript Workers in workerd answer every alias" in (
        serve.stderr()
    )
    assert serve.info["demo"] is True


def test_watch_reloads_code_and_keeps_serving_a_broken_one(tmp_path: Path) -> None:
    config = project(tmp_path)
    serve = ServeProcess(tmp_path, "--runtime", "workerd", "--watch", config=config)
    try:
        entry = tmp_path / "workers" / "sw" / "worker.js"
        entry.write_text(SERVICE_WORKER.replace("service-worker", "changed"))
        wait_for(serve, "reloaded ")
        _, _, body = get(serve.port, "/sw")
        assert json.loads(body)["format"] == "changed"
        entry.write_text("addEventListener('fetch', (event) => {")  # a syntax error
        wait_for(serve, "warning: reload of ")
        status, _, body = get(serve.port, "/sw")
        assert status == 200 and json.loads(body)["format"] == "changed"
        config.write_text(config.read_text() + "\nroutes: [not, a, route]\n")  # a bad config
        wait_for(serve, "warning: reload of ", count=2)
        status, _, body = get(serve.port, "/sw")
        assert status == 200 and json.loads(body)["format"] == "changed"
    finally:
        assert serve.stop() == 0
    err = serve.stderr()
    assert (
        f"warning: reload of {config} failed, still serving the previous config (7 routes): "
        in (err)
    )
    assert "SyntaxError" in err


def test_a_busy_port_is_exit_2(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = subprocess.run(
            [*SERVE, "--demo", "--runtime", "workerd", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=tmp_path,
            env=os.environ,
        )
    assert proc.returncode == 2
    assert f"error: cannot listen on 127.0.0.1:{port}: Address already in use" in proc.stderr


def wait_for(serve: ServeProcess, text: str, timeout_s: float = 60, count: int = 1) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if serve.stderr().count(text) >= count:
            return
        time.sleep(0.2)
    raise AssertionError(f"{text!r} never appeared:\n{serve.stderr()}")


OUTBOUND = """export default {
  async fetch(request, env) {
    // Answers itself: nothing leaves the machine.
    return Response.json({ outbound_saw: request.url, worker: env.worker, env: env.environment });
  },
};
"""
ACCOUNT_WORKER = """export default {
  async fetch(request, env) {
    const via = await (await fetch("https://api.example.invalid/x")).json();
    return Response.json({ from: "account", tone: env.TONE, via });
  },
};
"""


def test_from_account_serves_production_code_without_writing(
    tmp_path: Path,
    cf_state: EmulatorState,
    cf_env: dict[str, str],
    cf_seed: Code24Seed,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in cf_env.items():
        monkeypatch.setenv(name, value)
    account = cf_seed.account_id
    if cf_state.namespace(account, NAMESPACE) is None:
        cf_state.add_namespace(account, NAMESPACE)
    code = ACCOUNT_WORKER
    cf_state.add_account_script(
        account,
        "code24-outbound-staging",
        {"outbound.js": (OUTBOUND, "application/javascript+module")},
        main_module="outbound.js",
    )
    cf_state.add_namespace_script(
        account,
        NAMESPACE,
        "brand-worker",
        {"index.js": (code, "application/javascript+module")},
        main_module="index.js",
        bindings=[{"type": "plain_text", "name": "TONE", "text": "calm"}],
    )

    def change(data: dict[str, Any]) -> None:
        data["environments"]["local"]["upstreams"] = {}
        data["environments"]["staging"]["outbound"] = {
            "worker": "code24-outbound-staging",
            "params": ["worker"],
        }

    config = write_config(tmp_path, change)
    before = len(writes(cf_state))
    serve = ServeProcess(
        tmp_path, "--runtime", "workerd", "--from-account", "staging", config=config
    )
    try:
        status, headers, body = get(serve.port, "/elite/brand/create", "POST", b"{}")
        assert status == 200
        # The account's outbound Worker answers the worker's subrequest (nothing leaves).
        assert json.loads(body) == {
            "from": "account",
            "tone": "calm",
            "via": {
                "outbound_saw": "https://api.example.invalid/x",
                "worker": "brand-worker",
            },  # no environment: only `worker` is among the params (undefined drops out)
        }
        status, headers, _ = get(serve.port, "/api/market/research", "POST", b"{}")
        assert headers["X-Code24-Fallback-Reason"] == "worker_not_found"
    finally:
        assert serve.stop() == 0
    assert writes(cf_state)[before:] == []
    assert serve.info["upstreams"]["brand-worker"].startswith(
        f"staging namespace {NAMESPACE}/brand-worker (cached "
    )
    cached = list((tmp_path / "cache" / "workers").glob("*/*.js"))
    assert sorted(path.read_text() for path in cached) == sorted([code, OUTBOUND])
    assert "reading outbound Worker code24-outbound-staging (staging)" in serve.stderr()


FETCHER = """export default {
  async fetch() {
    const answer = await fetch("https://api.example.invalid/lookup?q=1");
    return Response.json({ via: await answer.json() });
  },
};
"""


def test_the_outbound_worker_sees_the_workers_subrequests(tmp_path: Path) -> None:
    (tmp_path / "outbound").mkdir()
    (tmp_path / "outbound" / "index.js").write_text(OUTBOUND)
    (tmp_path / "fetcher").mkdir()
    (tmp_path / "fetcher" / "index.js").write_text(FETCHER)
    data: dict[str, Any] = {
        "platform": "Test",
        "compatibility_date": "2025-06-01",
        "workers": {"fetcher": {"path": "fetcher"}},
        "routes": [{"prefix": "/f", "worker": "fetcher"}],
        "environments": {
            "local": {
                "base_url": "http://127.0.0.1:8799",
                "upstreams": {},
                "vars": {"ENVIRONMENT": "laptop"},
                "outbound": {
                    "worker": "outbound",
                    "params": ["worker", "environment", "request_id"],
                    "path": "outbound",
                },
            }
        },
    }
    config = write_config(tmp_path, data=data)
    serve = ServeProcess(tmp_path, "--runtime", "workerd", config=config)
    try:
        status, _, body = get(serve.port, "/f/x")
    finally:
        assert serve.stop() == 0
    assert status == 200
    assert json.loads(body) == {
        "via": {
            "outbound_saw": "https://api.example.invalid/lookup?q=1",
            "worker": "fetcher",
            "env": "laptop",
        }
    }
    assert (
        "note: the outbound Worker outbound gets request_id as undefined locally" in serve.stderr()
    )


def test_a_service_binding_reaches_an_alias_at_its_upstream_url(tmp_path: Path) -> None:
    """A worker's service binding to an alias that runs at an upstream URL (not from code)."""
    (tmp_path / "caller").mkdir()
    (tmp_path / "caller" / "index.js").write_text(
        CALLER.replace("http://kv/note", "http://legacy/report")
    )
    (tmp_path / "caller" / "wrangler.toml").write_text(
        '[[services]]\nbinding = "KV_WORKER"\nservice = "legacy-script"\n'
    )
    answer = Answer(200, b'{"read_back": "from the upstream"}', "application/json")
    with LocalServer({"/report": answer}) as upstream:
        data: dict[str, Any] = {
            "platform": "Test",
            "compatibility_date": "2025-06-01",
            "workers": {
                "caller": {"path": "caller"},
                "legacy": {"script": "legacy-script"},
            },
            "routes": [
                {"prefix": "/c", "worker": "caller"},
                {"prefix": "/legacy", "worker": "legacy"},
            ],
            "environments": {
                "local": {
                    "base_url": "http://127.0.0.1:8799",
                    "upstreams": {"legacy": upstream.url},
                }
            },
        }
        config = write_config(tmp_path, data=data)
        serve = ServeProcess(tmp_path, "--runtime", "workerd", config=config)
        try:
            status, _, body = get(serve.port, "/c")
        finally:
            assert serve.stop() == 0
    assert status == 200
    assert json.loads(body) == {"called": {"read_back": "from the upstream"}}


def test_from_account_needs_the_workerd_runtime(tmp_path: Path, run_cli: RunCli) -> None:
    result = run_cli("serve", "--demo", "--from-account", "staging")
    assert result.exit_code == 2, result.stderr
    assert "--from-account runs the account's code, which only the workerd runtime can" in (
        result.stderr
    )


def test_unknown_runtime_is_refused(run_cli: RunCli) -> None:
    result = run_cli("serve", "--demo", "--runtime", "deno")
    assert result.exit_code == 2, result.stderr
    assert "--runtime 'deno' is not one of python, workerd" in result.stderr


def fake_node(tmp_path: Path, version: str) -> Path:
    script = tmp_path / "bin" / "node"
    script.parent.mkdir(exist_ok=True)
    script.write_text(f"#!/bin/sh\necho {version}\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return script


def test_an_old_node_is_refused(
    tmp_path: Path, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CODE24_NODE", str(fake_node(tmp_path, "v18.19.0")))
    result = run_cli("serve", "--demo", "--runtime", "workerd", "--port", "0")
    assert result.exit_code == 2, result.stderr
    assert "needs Node.js 20 or later; " in result.stderr
    assert "is v18.19.0" in result.stderr


def test_without_npm_it_prints_the_one_command(
    tmp_path: Path, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CODE24_NODE_MODULES")
    monkeypatch.setenv("CODE24_NODE", str(fake_node(tmp_path, "v20.11.0")))
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))  # node only, no npm
    result = run_cli("serve", "--demo", "--runtime", "workerd", "--port", "0")
    assert result.exit_code == 2, result.stderr
    prefix = tmp_path / "cache" / f"miniflare-{MINIFLARE_VERSION}"
    assert (
        "hint: install npm, then run: npm install --prefix "
        f"{prefix} --no-audit --no-fund miniflare@{MINIFLARE_VERSION}"
    ) in result.stderr


FAKE_NPM = """#!/bin/sh
# Stands in for npm: "installs" by linking the tests' miniflare (no network in tests).
prefix="$3"
echo "npm http fetch GET 200 https://registry.npmjs.org/miniflare 12ms (cache hit)"
mkdir -p "$prefix/node_modules"
ln -s "{modules}/miniflare" "$prefix/node_modules/miniflare"
echo "added 1 package in 0.1s"
"""


def test_first_use_installs_miniflare_with_progress(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CODE24_NODE_MODULES")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    npm = bin_dir / "npm"
    npm.write_text(FAKE_NPM.replace("{modules}", str(NODE_MODULES)))
    npm.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    serve = ServeProcess(tmp_path, "--demo", "--runtime", "workerd")
    try:
        status, _, _ = get(serve.port, "/api/market/research", "POST", b"{}")
        assert status == 200
    finally:
        assert serve.stop() == 0
    prefix = tmp_path / "cache" / f"miniflare-{MINIFLARE_VERSION}"
    err = serve.stderr()
    assert err.startswith(
        f"installing miniflare {MINIFLARE_VERSION} (workerd) into {prefix} (once) ...\n"
        "  npm: npm http fetch GET 200 https://registry.npmjs.org/miniflare 12ms (cache hit)\n"
        "  npm: added 1 package in 0.1s\n"
        f"installed miniflare {MINIFLARE_VERSION}\n"
    )
    # The second start finds it: no install.
    again = ServeProcess(tmp_path, "--demo", "--runtime", "workerd")
    assert again.stop() == 0
    assert "installing" not in again.stderr()


def test_offline_install_prints_the_one_command(
    tmp_path: Path, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CODE24_NODE_MODULES")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "npm").write_text("#!/bin/sh\necho 'npm error code ENOTFOUND'\nexit 1\n")
    (bin_dir / "npm").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    result = run_cli("serve", "--demo", "--runtime", "workerd", "--port", "0")
    assert result.exit_code == 2, result.stderr
    prefix = tmp_path / "cache" / f"miniflare-{MINIFLARE_VERSION}"
    assert "  npm: npm error code ENOTFOUND\n" in result.stderr
    assert (
        f"error: installing miniflare {MINIFLARE_VERSION} failed (npm exit status 1; offline?)\n"
        f"  hint: run this once when online: npm install --prefix {prefix} --no-audit "
        f"--no-fund miniflare@{MINIFLARE_VERSION}"
    ) in result.stderr


def test_demo_ports_is_python_only(run_cli: RunCli) -> None:
    result = run_cli("serve", "--demo", "--runtime", "workerd", "--demo-ports", "auto")
    assert result.exit_code == 2
    assert "--demo-ports only applies to the Python runtime" in result.stderr


def test_a_node_modules_without_miniflare_is_refused(
    tmp_path: Path, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CODE24_NODE_MODULES", str(tmp_path))
    result = run_cli("serve", "--demo", "--runtime", "workerd", "--port", "0")
    assert result.exit_code == 2, result.stderr
    assert f"CODE24_NODE_MODULES={tmp_path} holds no miniflare package" in result.stderr


def test_a_worker_that_does_not_load_is_a_clear_start_error(tmp_path: Path) -> None:
    config = project(tmp_path)
    (tmp_path / "workers" / "html" / "index.js").write_text("export default {")
    proc = subprocess.run(
        [*SERVE, "--config", str(config), "--runtime", "workerd", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO_ROOT,
        env=os.environ,
    )
    assert proc.returncode == 2
    assert "error: workerd did not start: " in proc.stderr


def test_pinned_miniflare_is_the_tested_one() -> None:
    package = json.loads((REPO_ROOT / "tests" / "js" / "package.json").read_text())
    assert package["dependencies"]["miniflare"] == MINIFLARE_VERSION


# --- bindings (pure) ------------------------------------------------------------------------


def test_wrangler_bindings_map_to_local_ones(tmp_path: Path) -> None:
    (tmp_path / "wrangler.jsonc").write_text(
        """{
  // a comment, and a URL in a string: "http://x"
  "vars": {"A": "text", "B": {"n": 1}},
  "kv_namespaces": [{"binding": "KV", "id": "abc"}],
  "r2_buckets": [{"binding": "FILES", "bucket_name": "files"}],
  "d1_databases": [{"binding": "DB", "database_name": "db", "database_id": "d1-id"}],
  "durable_objects": {"bindings": [{"name": "ROOMS", "class_name": "Room"},
                                   {"name": "OTHER", "class_name": "C", "script_name": "nope"}]},
  "services": [{"binding": "PEER", "service": "peer-script"}, {"binding": "X", "service": "x"}],
  "ai": {"binding": "AI"},
  "queues": {"producers": [{"binding": "JOBS", "queue": "jobs"}]},
  "url": "http://example.invalid/*",
}"""
    )
    data, found = read_wrangler_config(tmp_path)
    assert found == tmp_path / "wrangler.jsonc"
    local = local_bindings(
        wrangler_bindings(data),
        secrets={"TOKEN": "t"},
        secret_names=["TOKEN", "OTHER_SECRET"],
        workers={"peer": "alias-peer", "peer-script": "alias-peer"},
        own_worker="alias-me",
    )
    assert local.spec() == {
        "vars": {"A": "text", "B": {"n": 1}},
        "secrets": {"TOKEN": "t"},
        "kv": {"KV": "abc"},
        "r2": {"FILES": "files"},
        "d1": {"DB": "d1-id"},
        "durable_objects": {"ROOMS": {"className": "Room"}},
        "services": {"PEER": "alias-peer"},
    }
    assert local.missing == [
        "OTHER (durable_object_namespace): its class lives in Worker nope, which does not run here",
        "X (service): Worker x does not run here",
        "AI (ai): not emulated locally",
        "JOBS (queue): not emulated locally",
        "OTHER_SECRET (secret_text): no value in the local secrets file",
    ]


def test_dev_vars_file(tmp_path: Path) -> None:
    file = tmp_path / ".dev.vars"
    file.write_text("# local only\nA=1\nexport B = 'two words'\n\nC=\"x=y\"\n")
    assert read_secrets(file) == {"A": "1", "B": "two words", "C": "x=y"}
    assert read_secrets(tmp_path / "missing") == {}
    file.write_text("not a pair\n")
    from code24ctl.errors import UsageError

    with pytest.raises(UsageError, match=r"\.dev\.vars:1: not a KEY=value line"):
        read_secrets(file)


def test_repo_config_local_environment_serves_in_workerd(tmp_path: Path) -> None:
    """The shipped config's local environment (upstream URLs, nothing listening) still starts:
    each alias goes to its URL, and a closed one is warned about, as in the Python runtime."""
    data = repo_config()
    config = write_config(tmp_path, data=data)
    serve = ServeProcess(tmp_path, "--runtime", "workerd", config=config)
    try:
        status, headers, _ = get(serve.port, "/api/market/research", "POST", b"{}")
        assert status == 502 or headers["X-Code24-Fallback"] == "true"
    finally:
        assert serve.stop() == 0
    assert serve.info["upstreams"]["market-research"] == "http://127.0.0.1:8789"
    assert yaml.safe_load(config.read_text())["environments"]["local"]["upstreams"]


CREDENTIALS = {
    "CLOUDFLARE_API_TOKEN": "tok-never-handed-to-node-0123456789",
    "CLOUDFLARE_API_KEY": "key-never-handed-to-node",
    "CLOUDFLARE_ACCOUNT_ID": "0123456789abcdef0123456789abcdef",
    "CF_API_TOKEN": "legacy-tok-never-handed-to-node",
}


def recording(tmp_path: Path, name: str, then: str) -> tuple[Path, Path]:
    """An executable ``name`` that appends its environment to a file, then runs ``then``."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    seen = tmp_path / f"{name}-environment.txt"
    script = bin_dir / name
    script.write_text(f'#!/bin/sh\nenv >> "{seen}"\n{then}\n')
    script.chmod(0o755)
    return script, seen


def test_node_and_workerd_never_get_the_cloudflare_credentials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_node = shutil.which("node")
    assert real_node is not None
    node, seen = recording(tmp_path, "node", f'exec "{real_node}" "$@"')
    monkeypatch.setenv("CODE24_NODE", str(node))
    monkeypatch.setenv("CODE24_SEEN_BY_NODE", "kept")
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    serve = ServeProcess(tmp_path, "--demo", "--runtime", "workerd")
    try:
        status, _, _ = get(serve.port, "/api/market/research", "POST", b"{}")
        assert status == 200
    finally:
        assert serve.stop() == 0
    environments = seen.read_text()
    assert environments.count("CODE24_SEEN_BY_NODE=kept") == 2  # `node --version`, the runner
    for name, value in CREDENTIALS.items():
        assert name not in environments and value not in environments


def test_npm_never_gets_the_cloudflare_credentials(
    tmp_path: Path, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CODE24_NODE_MODULES")
    _, seen = recording(tmp_path, "npm", "exit 1")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    result = run_cli("serve", "--demo", "--runtime", "workerd", "--port", "0", env=CREDENTIALS)
    assert result.exit_code == 2, result.stderr
    assert "installing miniflare" in result.stderr
    environment = seen.read_text()
    assert "PATH=" in environment
    for name, value in CREDENTIALS.items():
        assert name not in environment and value not in environment


def process_tree(root: int) -> set[int]:
    """``root`` and every process below it (Linux /proc)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents[int(entry.name)] = int(fields[1])
    tree = {root}
    while grown := {pid for pid, parent in parents.items() if parent in tree} - tree:
        tree |= grown
    return tree


def listening_addresses(pids: set[int]) -> set[tuple[str, int]]:
    """(address, port) of every TCP socket the processes listen on (Linux /proc/net/tcp*)."""
    inodes: set[str] = set()
    for pid in pids:
        with contextlib.suppress(OSError):
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                with contextlib.suppress(OSError):
                    target = os.readlink(fd)
                    if target.startswith("socket:["):
                        inodes.add(target[8:-1])
    found: set[tuple[str, int]] = set()
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] != "0A" or fields[9] not in inodes:  # 0A: LISTEN
                continue
            raw, port = fields[1].split(":")
            packed = bytes.fromhex(raw)
            # /proc writes the address as 32-bit words in host (little-endian) order.
            words = b"".join(packed[i : i + 4][::-1] for i in range(0, len(packed), 4))
            family = socket.AF_INET if table == "tcp" else socket.AF_INET6
            found.add((socket.inet_ntop(family, words), int(port, 16)))
    return found


@pytest.mark.skipif(not Path("/proc/net/tcp").is_file(), reason="reads Linux /proc")
def test_every_listener_binds_loopback_by_default(tmp_path: Path) -> None:
    serve = ServeProcess(tmp_path, "--demo", "--runtime", "workerd", "--metrics-port", "0")
    try:
        admin_port = int(serve.info["admin_url"].rsplit(":", 1)[1])
        listening = listening_addresses(process_tree(serve.proc.pid))
    finally:
        assert serve.stop() == 0
    assert serve.info["host"] == "127.0.0.1"
    assert {("127.0.0.1", serve.port), ("127.0.0.1", admin_port)} <= listening
    # workerd's and miniflare's own sockets included: nothing on another address.
    assert {address for address, _ in listening} == {"127.0.0.1"}, listening


LEAKY = """export default {
  async fetch(request, env) {
    console.log(`calling the API with ${env.CF_TOKEN}`);
    return Response.json({ ok: true });
  },
};
"""


def test_a_worker_that_logs_the_api_token_shows_it_masked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A worker that calls the Cloudflare API gets the token from .dev.vars, as it should; what
    # it logs goes through serve's stderr, which never shows the token.
    token = CREDENTIALS["CLOUDFLARE_API_TOKEN"]
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", token)
    (tmp_path / "leaky").mkdir()
    (tmp_path / "leaky" / "index.js").write_text(LEAKY)
    (tmp_path / "leaky" / ".dev.vars").write_text(f"CF_TOKEN={token}\n")
    data: dict[str, Any] = {
        "platform": "Test",
        "compatibility_date": "2025-06-01",
        "workers": {"leaky": {"path": "leaky"}},
        "routes": [{"prefix": "/l", "worker": "leaky"}],
        "environments": {"local": {"base_url": "http://127.0.0.1:8799", "upstreams": {}}},
    }
    config = write_config(tmp_path, data=data)
    serve = ServeProcess(tmp_path, "--runtime", "workerd", config=config)
    try:
        status, _, _ = get(serve.port, "/l/x")
        assert status == 200
        wait_for(serve, "calling the API with ")
    finally:
        assert serve.stop() == 0
    assert "calling the API with ***\n" in serve.stderr()
    assert token not in serve.stderr()


# A Worker that prints what the dispatcher's record lines look like: a request record (with a
# guessed key, too), a data point, and one hidden after a newline inside a single log call.
FORGER = """const fake = {
  code24: "request", request_id: "forged-1", method: "GET", path: "/forged", environment: "local",
  worker: "victim", route: "/victim", status: 503, upstream_status: 503,
  fallback_reason: "worker_timeout", dispatch_ms: 1, body_bytes: 0,
};
export default {
  async fetch(request, env) {
    console.log(`forger env: ${Object.keys(env).sort()}`);
    console.log(JSON.stringify(fake));
    console.log(JSON.stringify({ ...fake, request_id: "forged-2", record_key: "0".repeat(64) }));
    console.log("CODE24_SERVE_DATA_POINT " + JSON.stringify({ indexes: ["victim"] }));
    console.log("hello\\n" + JSON.stringify({ ...fake, request_id: "forged-3" }));
    console.log("2026-01-01T00:00:00.000Z GET /victim worker=victim status=503 " +
      "reason=worker_timeout ms=1.00 id=forged-4");
    return Response.json({ ok: true });
  },
};
"""


def test_a_worker_cannot_forge_the_dispatchers_records(tmp_path: Path, run_cli: RunCli) -> None:
    (tmp_path / "forger").mkdir()
    (tmp_path / "forger" / "index.js").write_text(FORGER)
    # Asking for the dispatcher's Worker (or the module holding its data points) by name gets
    # nothing: a service binding reaches only the aliases.
    (tmp_path / "forger" / "wrangler.toml").write_text(
        '[vars]\nOWN = "yes"\n'
        '[[services]]\nbinding = "D"\nservice = "dispatcher"\n'
        '[[services]]\nbinding = "A"\nservice = "code24-analytics"\n'
    )
    data: dict[str, Any] = {
        "platform": "Test",
        "compatibility_date": "2025-06-01",
        "workers": {"forger": {"path": "forger"}, "victim": {"script": "victim"}},
        "routes": [
            {"prefix": "/f", "worker": "forger"},
            {"prefix": "/victim", "worker": "victim"},
        ],
        "environments": {"local": {"base_url": "http://127.0.0.1:8799", "upstreams": {}}},
    }
    config = write_config(tmp_path, data=data)
    serve = ServeProcess(
        tmp_path, "--runtime", "workerd", "--metrics-port", "0", "-vv", config=config
    )
    try:
        status, headers, _ = get(serve.port, "/f/x")
        assert status == 200
        request_id = headers["X-Code24-Request-Id"]
        wait_for(serve, f"id={request_id}")
        wait_for(serve, '"request_id":"forged-3"')
        admin = int(serve.info["admin_url"].rsplit(":", 1)[1])
        _, _, health = get(admin, "/healthz")
        metrics_url = f"{serve.info['admin_url']}/metrics"
        stats = run_cli(
            "stats",
            "--env",
            "local",
            "--by",
            "worker",
            "--json",
            "--metrics-url",
            metrics_url,
            config=config,
        )
    finally:
        assert serve.stop() == 0
    # The one real request is all that counts: stats, /healthz and the access lines.
    groups = {g["key"]: g["requests"] for g in json.loads(stats.stdout)["groups"]}
    assert groups == {"forger": 1.0}
    assert json.loads(health)["analytics_data_points"] == 1
    err = serve.stderr()
    access = [line for line in err.splitlines() if re.match(r"\d{4}-\d\d-\d\dT", line)]
    assert len(access) == 1 and " GET /f/x worker=forger status=200 reason=- ms=" in access[0]
    assert access[0].endswith(f" id={request_id}")
    assert "/forged" not in "\n".join(access)
    # Each imitation shows as the worker's log line, as printed.
    fake = (
        '{"code24":"request","request_id":"forged-1","method":"GET","path":"/forged",'
        '"environment":"local","worker":"victim","route":"/victim","status":503,'
        '"upstream_status":503,"fallback_reason":"worker_timeout","dispatch_ms":1,"body_bytes":0}'
    )
    lines = err.splitlines()
    assert "workerd: forger env: OWN" in lines
    assert serve.info["missing_bindings"]["forger"] == [
        "D (service): Worker dispatcher does not run here",
        "A (service): Worker code24-analytics does not run here",
    ]
    assert f"workerd: {fake}" in lines
    guessed = fake.replace("forged-1", "forged-2")[:-1] + f',"record_key":"{"0" * 64}"}}'
    assert f"workerd: {guessed}" in lines
    assert 'workerd: CODE24_SERVE_DATA_POINT {"indexes":["victim"]}' in lines
    assert f"workerd: {fake.replace('forged-1', 'forged-3')}" in lines
    # A line shaped like an access line is marked as workerd's output, as every line it prints.
    assert (
        "workerd: 2026-01-01T00:00:00.000Z GET /victim worker=victim status=503 "
        "reason=worker_timeout ms=1.00 id=forged-4"
    ) in lines
    # The key itself (64 hex digits) is nowhere, -vv included.
    shown = err + json.dumps(serve.info)
    assert re.findall(r"[0-9a-f]{64}", shown) == ["0" * 64]
    assert "record_key" not in err.replace(f'"record_key":"{"0" * 64}"', "")
