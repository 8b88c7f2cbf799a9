"""namespaces.yaml: the repo's own file, and every way a broken file is reported."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from code24ctl.config import load_config, resolve_config
from code24ctl.dispatch.table import compile_route_table
from code24ctl.errors import ConfigError, UsageError
from tests.emulator.seeds import CODE24_SCRIPTS
from tests.support.cli import REPO_CONFIG, RunCli
from tests.support.staging import (
    ALIASES,
    API_PATTERN,
    DISPATCHER,
    ELITE_PATTERN,
    KV_TITLE,
    NAMESPACE,
    STAGING_SCRIPTS,
    write_config,
)

CODE24_ROUTES = [
    ("/api/competitive", "competitive-analysis", "/api/competitive"),
    ("/api/market", "market-research", "/api/market"),
    ("/elite/brand", "brand-worker", "/elite"),
    ("/elite/design", "designer-worker", "/elite"),
    ("/elite/develop", "developer-worker", "/elite"),
]


def test_repo_config_describes_code24_as_in_the_contract() -> None:
    resolved = resolve_config(REPO_CONFIG, "staging")
    config = resolved.config
    assert config.platform == "Code24"
    assert [(r.prefix, r.worker, r.effective_strip) for r in config.routes] == CODE24_ROUTES
    assert {alias: w.script for alias, w in config.workers.items()} == {
        "competitive-analysis": "competitive-analysis-worker-staging",
        "market-research": "market-research-worker-staging",
        "brand-worker": "brand-worker-staging",
        "designer-worker": "designer-worker-staging",
        "developer-worker": "advanced-developer-worker-staging",
    }
    assert resolved.namespace() == "code24-workers-staging"
    assert resolved.environment.routes == [
        "staging.code24.dev/api/*",
        "staging.code24.dev/elite/*",
    ]
    assert all(route.probe is not None for route in config.routes)
    assert set(config.environments) == {"staging", "production", "local"}
    assert resolve_config(REPO_CONFIG, "local").is_local


def test_the_shared_staging_names_match_what_the_repo_config_resolves_to() -> None:
    """tests/support/staging.py derives these instead of hard-coding them; they must stay true."""
    resolved = resolve_config(REPO_CONFIG, "staging")
    scripts = {alias: w.script for alias, w in resolved.config.workers.items()}
    assert ALIASES == (
        "competitive-analysis",
        "market-research",
        "brand-worker",
        "designer-worker",
        "developer-worker",
    )
    assert scripts == STAGING_SCRIPTS
    assert tuple(scripts.values()) == CODE24_SCRIPTS
    assert resolved.namespace() == NAMESPACE
    assert resolved.environment.routes == [API_PATTERN, ELITE_PATTERN]
    assert (resolved.dispatcher(), resolved.environment.kv_namespace) == (DISPATCHER, KV_TITLE)


def test_env_name_expands_per_environment() -> None:
    production = resolve_config(REPO_CONFIG, "production").config
    assert production.workers["developer-worker"].script == ("advanced-developer-worker-production")


def test_account_id_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    resolved = resolve_config(REPO_CONFIG, "staging")
    with pytest.raises(UsageError, match="CLOUDFLARE_ACCOUNT_ID"):
        resolved.account_id()
    monkeypatch.setenv("CLOUDFLARE_ACCOUNT_ID", "abc123")
    assert resolve_config(REPO_CONFIG, "staging").account_id() == "abc123"


def _write(tmp_path: Path, text: str) -> Path:
    # Raw text on purpose: these files are broken in ways no YAML document can be (write_config
    # writes every well-formed one).
    path = tmp_path / "namespaces.yaml"
    path.write_text(text)
    return path


def _broken(tmp_path: Path, old: str, new: str) -> Path:
    text = REPO_CONFIG.read_text()
    assert old in text, old
    return _write(tmp_path, text.replace(old, new, 1))


def _line_of(path: Path, needle: str) -> int:
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if needle in line:
            return number
    raise AssertionError(needle)


BROKEN_CASES = [
    # (id, old, new, the located message we expect, the line's text)
    (
        "misspelt-key",
        "    timeout_ms: 30000\n    fallback:\n      status: degraded\n      worker: market",
        "    timeout_msec: 30000\n    fallback:\n      status: degraded\n      worker: market",
        "workers.market-research.timeout_msec: unknown key",
        "timeout_msec",
    ),
    (
        "unknown-worker",
        "    worker: market-research               #",
        "    worker: market-reserch                #",
        "routes[1].worker: unknown worker 'market-reserch'",
        "market-reserch",
    ),
    (
        "bad-alias",
        "  brand-worker:\n    script",
        "  Brand_Worker:\n    script",
        "workers.Brand_Worker: 'Brand_Worker' is not a valid Worker name",
        "Brand_Worker:",
    ),
    (
        "duplicate-prefix",
        "  - prefix: /api/market\n"
        "    worker: market-research               # /api/market/research -> /research\n"
        "    probe:\n      method: POST\n      path: /api/market/research",
        "  - prefix: /api/competitive\n    worker: market-research\n"
        "    probe:\n      method: POST\n      path: /api/competitive/research",
        "routes[1].prefix: duplicate prefix '/api/competitive' (also routes[0])",
        None,
    ),
    (
        "strip-not-leading",
        "    strip: /elite                          # /elite/brand/create",
        "    strip: /api                            # /elite/brand/create",
        "routes[2]: strip '/api' must be a leading part of prefix '/elite/brand'",
        None,
    ),
    (
        "wrong-type",
        "    timeout_ms: 30000\n    fallback:\n      status: degraded\n      worker: brand",
        "    timeout_ms: soon\n    fallback:\n      status: degraded\n      worker: brand",
        "workers.brand-worker.timeout_ms: Input should be a valid integer",
        "timeout_ms: soon",
    ),
]


@pytest.mark.parametrize(
    ("old", "new", "expected", "needle"),
    [case[1:] for case in BROKEN_CASES],
    ids=[case[0] for case in BROKEN_CASES],
)
def test_broken_file_is_one_located_message_exit_2(
    tmp_path: Path, run_cli: RunCli, old: str, new: str, expected: str, needle: str | None
) -> None:
    path = _broken(tmp_path, old, new)
    result = run_cli("config", "validate", config=path)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert expected in result.stderr
    assert result.stderr.startswith(f"error: invalid config {path}:")
    assert "Traceback" not in result.stderr
    if needle is not None:
        assert f"{path}:{_line_of(path, needle)}: " in result.stderr


def test_bad_yaml_names_the_line(tmp_path: Path, run_cli: RunCli) -> None:
    path = _write(tmp_path, "platform: Code24\nworkers:\n  a: [unclosed\n")
    result = run_cli("config", "validate", config=path)
    assert result.exit_code == 2
    assert f"{path}:4: not valid YAML" in result.stderr


def test_duplicate_yaml_key_is_an_error(tmp_path: Path) -> None:
    path = _write(tmp_path, REPO_CONFIG.read_text() + "platform: Again\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.field == "platform"
    assert caught.value.line == _line_of(path, "platform: Again")


def test_unset_variable_inside_a_string_is_located(tmp_path: Path) -> None:
    path = _broken(tmp_path, "base_url: https://staging.code24.dev", "base_url: https://${HOSTY}")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.field == "environments.staging.base_url"
    assert "environment variable HOSTY is not set" in caught.value.render()
    assert caught.value.line == _line_of(path, "${HOSTY}")


def test_variables_expand(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _broken(tmp_path, "base_url: https://staging.code24.dev", "base_url: https://${HOSTY}")
    monkeypatch.setenv("HOSTY", "edge.example.com")
    assert resolve_config(path, "staging").environment.base_url == "https://edge.example.com"


def test_missing_config_file_is_exit_2(tmp_path: Path, run_cli: RunCli) -> None:
    result = run_cli("config", "validate", config=tmp_path / "nope.yaml")
    assert result.exit_code == 2
    assert f"error: config file {tmp_path / 'nope.yaml'} not found" in result.stderr


def test_unknown_environment_lists_the_choices(run_cli: RunCli) -> None:
    result = run_cli("config", "show", "--env", "qa")
    assert result.exit_code == 2
    assert "unknown environment 'qa'" in result.stderr
    assert "choose one of: staging, production, local" in result.stderr


def test_validate_ok(run_cli: RunCli) -> None:
    result = run_cli("config", "validate")
    assert result.exit_code == 0
    assert result.stdout == (
        f"{REPO_CONFIG}: ok (5 workers, 5 routes, environments: staging, production, local)\n"
    )
    as_json = json.loads(run_cli("config", "validate", "--json").stdout)
    assert as_json["valid"] is True
    assert as_json["routes"] == [prefix for prefix, _, _ in CODE24_ROUTES]


def test_show_resolves_the_environment(run_cli: RunCli) -> None:
    result = run_cli("config", "show", "--env", "production", "--json")
    assert result.exit_code == 0
    document = json.loads(result.stdout)
    assert document["environment"] == "production"
    workers = document["config"]["workers"]
    assert workers["brand-worker"]["script"] == "brand-worker-production"
    human = run_cli("config", "show", "-e", "staging")
    assert "script: brand-worker-staging" in human.stdout


def test_env_comes_from_code24_env(run_cli: RunCli) -> None:
    result = run_cli("config", "show", "--json", env={"CODE24_ENV": "local"})
    assert json.loads(result.stdout)["environment"] == "local"


def test_the_api_token_can_never_be_expanded_into_the_config(
    tmp_path: Path, run_cli: RunCli
) -> None:
    token = "tok_SECRET_in_config_123"
    path = _broken(
        tmp_path, "      PLATFORM_NAME: Code24\n", "      AUTH: ${CLOUDFLARE_API_TOKEN}\n"
    )
    for args in (["config", "show", "--env", "staging"], ["deploy", "--dry-run"]):
        result = run_cli(*args, config=path, env={"CLOUDFLARE_API_TOKEN": token})
        assert result.exit_code == 2, args
        assert "CLOUDFLARE_API_TOKEN cannot be used in the config" in result.stderr
        assert token not in result.output


def test_an_unset_lone_variable_names_the_variable(tmp_path: Path, run_cli: RunCli) -> None:
    path = _broken(
        tmp_path, "      PLATFORM_NAME: Code24\n", "      PLATFORM_NAME: ${NOPE_UNSET}\n"
    )
    result = run_cli("config", "validate", config=path)
    assert result.exit_code == 2
    line = _line_of(path, "${NOPE_UNSET}")
    assert (
        f"{path}:{line}: environments.staging.vars.PLATFORM_NAME: environment variable "
        "NOPE_UNSET is not set\n"
    ) in result.stderr


def test_the_api_token_is_refused_whatever_variable_carries_it(
    tmp_path: Path, run_cli: RunCli
) -> None:
    token = "tok_SECRET_via_other_var_123"
    path = _broken(tmp_path, "      PLATFORM_NAME: Code24\n", "      API_KEY: ${MYTOK}\n")
    env = {"CLOUDFLARE_API_TOKEN": token, "MYTOK": token}
    for args in (["config", "show", "--env", "staging"], ["deploy", "--dry-run"]):
        result = run_cli(*args, config=path, env=env)
        assert result.exit_code == 2, args
        assert "this value contains the API token (CLOUDFLARE_API_TOKEN)" in result.stderr
        assert token not in result.output


def test_env_expands_in_namespace_and_dispatcher_names(tmp_path: Path, run_cli: RunCli) -> None:
    text = REPO_CONFIG.read_text()
    # The shipped config names the dispatcher as the deployment it replaces did.
    assert "dispatcher: code24-dynamic-dispatcher-{env}" in text
    for old, new in (("namespace: code24-workers-staging", "namespace: code24-workers-{env}"),):
        assert old in text
        text = text.replace(old, new, 1)
    path = _write(tmp_path, text)
    assert run_cli("config", "validate", config=path).exit_code == 0
    resolved = resolve_config(path, "staging")
    assert (resolved.namespace(), resolved.dispatcher()) == (
        "code24-workers-staging",
        "code24-dynamic-dispatcher-staging",
    )


def test_cross_field_problems_carry_typed_locations() -> None:
    import yaml
    from pydantic import ValidationError

    from code24ctl.config.models import Config, ReferenceProblems

    data = yaml.safe_load(REPO_CONFIG.read_text(encoding="utf-8"))
    data["account_id"] = "x"
    data["routes"][1]["worker"] = "nobody"
    data["routes"].append(dict(data["routes"][2]))
    with pytest.raises(ValidationError) as caught:
        Config.model_validate(data)
    found = caught.value.errors()[0]["ctx"]["error"]
    assert isinstance(found, ReferenceProblems)
    assert [location for location, _ in found.problems] == [
        ("routes", 1, "worker"),
        ("routes", 5, "prefix"),
    ]
    assert found.problems[1][1] == "duplicate prefix '/elite/brand' (also routes[2])"


def test_outbound_params_come_from_a_fixed_set_and_limits_reach_the_table(
    tmp_path: Path, run_cli: RunCli
) -> None:
    def change(data: dict[str, Any]) -> None:
        data["environments"]["staging"]["outbound"] = {
            "worker": "code24-outbound-staging",
            "params": ["worker", "customer_id"],
        }

    bad = write_config(tmp_path, change)
    result = run_cli("config", "validate", config=bad)
    assert result.exit_code == 2
    assert "environments.staging.outbound.params[1]: Input should be" in result.stderr
    assert "'worker', 'environment', 'request_id' or 'route'" in result.stderr

    def good(data: dict[str, Any]) -> None:
        data["environments"]["staging"]["outbound"] = {
            "worker": "code24-outbound-staging",
            "params": ["route", "request_id"],
        }
        data["workers"]["brand-worker"]["limits"] = {"cpu_ms": 50, "subrequests": 5}

    resolved = resolve_config(write_config(tmp_path, good), "staging")
    table = compile_route_table(resolved.config, resolved.env_name)
    assert table["outbound_params"] == ["route", "request_id"]
    assert table["workers"]["brand-worker"]["limits"] == {"cpu_ms": 50, "subrequests": 5}
    assert "limits" not in table["workers"]["market-research"]
    # The local environment has no outbound Worker: no parameters in its table.
    assert "outbound_params" not in compile_route_table(resolved.config, "local")


def test_every_name_the_config_package_exports_loads() -> None:
    # code24ctl.config loads its names on first use (so --help skips the models): each must
    # be found where the package says it lives.
    import code24ctl.config

    for name in code24ctl.config.__all__:
        assert getattr(code24ctl.config, name) is not None, name


def test_the_reserved_binding_names_are_the_dispatchers_own() -> None:
    from code24ctl.config.checks import DISPATCHER_BINDINGS
    from code24ctl.ops import dispatcher_worker

    assert set(DISPATCHER_BINDINGS) == {
        dispatcher_worker.DISPATCHER_BINDING,
        dispatcher_worker.METADATA_BINDING,
        dispatcher_worker.ROUTE_TABLE_BINDING,
        dispatcher_worker.ANALYTICS_BINDING,
    }


@pytest.mark.parametrize(
    ("pattern_path", "prefix", "reaches"),
    [
        ("/api/*", "/api/market", True),
        ("/api/*", "/elite/brand", False),
        ("/*", "/elite/brand", True),
        ("/elite/brand/v2*", "/elite/brand", True),
        ("/elite/brand", "/elite/brand", True),
        ("/elite/brandx/*", "/elite/brand", False),
        ("/api*", "/api/market", True),
    ],
)
def test_a_zone_route_reaches_a_prefix_on_a_segment_boundary(
    pattern_path: str, prefix: str, reaches: bool
) -> None:
    from code24ctl.config.checks import _reaches

    assert _reaches(pattern_path, prefix) is reaches
