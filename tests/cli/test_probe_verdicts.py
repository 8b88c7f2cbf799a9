"""``probe`` cannot be green over a dead platform: ``serve`` in front of dead, HTML-answering
and missing workers, probed through the CLI.

The fallback rule (docs in README.md, "Exit status"): a fallback for a worker that is not
serving fails the route; a fallback for a worker that answered HTML or non-JSON is a warning
(a failure with --fail-on-fallback); the dispatcher's own ``route_not_found`` fails.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.support.builders import argv
from tests.support.cli import RunCli
from tests.support.http_servers import refused_port
from tests.support.serve_process import ServeProcess, local_config
from tests.support.staging import ALIASES, write_config


def test_serve_over_dead_upstreams_fails_the_probe_naming_the_reason(
    tmp_path: Path, run_cli: RunCli
) -> None:
    with refused_port() as port:
        config = local_config(tmp_path, {alias: f"http://127.0.0.1:{port}" for alias in ALIASES})
        serve = ServeProcess(tmp_path, config=config)
        try:
            base = f"http://127.0.0.1:{serve.port}"
            result = run_cli("probe", "--env", "local", "--base-url", base, config=config)
            as_json = run_cli(
                "probe", "--env", "local", "--base-url", base, "--json", config=config
            )
        finally:
            assert serve.stop() == 0

    assert result.exit_code == 1
    assert result.stderr == (
        "5 of 5 answered by fallback: worker_not_found \u00d75\n"
        "error: 5 of 5 routes failed the probe\n"
    )
    assert (
        "/api/competitive: answered by the dispatcher's fallback (worker_not_found): "
        "the worker competitive-analysis is not serving"
    ) in result.stdout.splitlines()
    document = json.loads(as_json.stdout)
    assert as_json.exit_code == 1
    assert document["ok"] is False
    assert document["summary"]["fallbacks"] == 5
    assert document["notes"] == ["5 of 5 answered by fallback: worker_not_found \u00d75"]
    for row in document["routes"]:
        # The fallback itself is JSON: the verdict alone would have passed.
        assert (row["verdict"], row["outcome"]) == ("json", "fail")
        assert row["fallback_reasons"] == {"worker_not_found": 1}


def test_a_worker_over_its_limit_fails_the_probe(tmp_path: Path, run_cli: RunCli) -> None:
    """Cloudflare's error 1102 (a worker over its CPU limit) is a worker that is not serving:
    the fallback answered, but the probe fails the route, as for a missing worker."""
    from tests.support.http_servers import Answer, LocalServer

    over = Answer(503, b"error code: 1102", content_type="text/plain; charset=UTF-8")
    ok = Answer(200, b'{"ok": true}', content_type="application/json")
    with LocalServer({}, default=ok) as fine, LocalServer({}, default=over) as busy:
        upstreams = {alias: fine.url for alias in ALIASES}
        upstreams["brand-worker"] = busy.url
        config = local_config(tmp_path, upstreams)
        serve = ServeProcess(tmp_path, config=config)
        try:
            base = f"http://127.0.0.1:{serve.port}"
            result = run_cli("probe", "--env", "local", "--base-url", base, config=config)
        finally:
            assert serve.stop() == 0
    assert result.exit_code == 1, result.output
    assert result.stderr == (
        "1 of 5 answered by fallback: worker_over_limit\nerror: 1 of 5 routes failed the probe\n"
    )
    assert (
        "/elite/brand: answered by the dispatcher's fallback (worker_over_limit): "
        "the worker brand-worker is not serving"
    ) in result.stdout.splitlines()


def test_one_html_worker_passes_with_a_visible_warning_unless_fail_on_fallback(
    tmp_path: Path, run_cli: RunCli
) -> None:
    # The demo's designer-worker answers an HTML 502 page; the four others answer JSON.
    serve = ServeProcess(tmp_path, "--demo")
    try:
        base = f"http://127.0.0.1:{serve.port}"
        result = run_cli("probe", "--env", "local", "--base-url", base, env={"COLUMNS": "200"})
        strict = run_cli("probe", "--env", "local", "--base-url", base, "--fail-on-fallback")
    finally:
        assert serve.stop() == 0

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert [line.split()[0] for line in lines[1:6]] == ["ok", "ok", "ok", "warn", "ok"]
    assert (
        "/elite/design: warning: answered by the dispatcher's fallback (upstream_html): "
        "the worker answered, but not with JSON"
    ) in lines
    assert lines[-1].endswith(": 5 passed (1 with a warning), 0 failed")
    assert result.stderr == "1 of 5 answered by fallback: upstream_html\n"
    assert strict.exit_code == 1
    assert strict.stderr.endswith("error: 1 of 5 routes failed the probe\n")


def test_a_sample_the_deployed_route_table_does_not_know_fails(
    tmp_path: Path, run_cli: RunCli
) -> None:
    serve = ServeProcess(tmp_path, "--demo")

    def add_route(data: dict[str, Any]) -> None:
        data["routes"].append(
            {
                "prefix": "/api/new",
                "worker": "market-research",
                "probe": {"method": "GET", "path": "/api/new/ping"},
            }
        )

    probed = write_config(tmp_path, add_route, name="probed.yaml")
    try:
        base = f"http://127.0.0.1:{serve.port}"
        result = run_cli(
            *argv(f"probe --env local --base-url {base} --route /api/new --json"),
            config=probed,
        )
    finally:
        assert serve.stop() == 0

    assert result.exit_code == 1
    row = json.loads(result.stdout)["routes"][0]
    assert (row["verdict"], row["status"], row["refused"]) == ("json", 404, "route_not_found")
    assert row["problems"] == [
        "the dispatcher refused the request itself (route_not_found): the probe sample does "
        "not match the deployed route table"
    ]


def test_no_route_reachable_is_one_cause_with_a_hint_and_exit_3(run_cli: RunCli) -> None:
    with refused_port() as port:
        result = run_cli("probe", "--env", "local", "--base-url", f"http://127.0.0.1:{port}")

    assert result.exit_code == 3
    assert result.stderr == (
        f"error: no route answered at http://127.0.0.1:{port} (5 probed): "
        f"connection refused by 127.0.0.1:{port}\n"
        "  hint: is code24ctl serve running? (code24ctl serve --env local)\n"
    )
