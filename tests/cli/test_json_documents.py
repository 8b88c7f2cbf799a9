"""The JSON contract: every command's ``--json`` document, success and failure, and the README's
examples validate against their pydantic models (``code24ctl.cli.schemas``), and every command
has a model."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from code24ctl.cli import app
from code24ctl.cli.documents import ERROR_CODES, Document, ErrorDocument
from code24ctl.cli.schemas import COMMAND_MODELS
from tests.emulator.seeds import Code24Seed
from tests.emulator.site import VersionSite
from tests.emulator.state import EmulatorState
from tests.support.builders import argv
from tests.support.cli import REPO_CONFIG, REPO_ROOT, CliResult, RunCli
from tests.support.http_servers import Answer, LocalServer
from tests.support.staging import DISPATCHER, NAMESPACE, write_config

HTML_PAGE = Answer(502, b"<!DOCTYPE html><html><body>Bad gateway</body></html>", "text/html")


def _leaf_commands() -> set[str]:
    import typer

    found: set[str] = set()

    def walk(command: Any, path: tuple[str, ...]) -> None:
        children = getattr(command, "commands", None)
        if children is None:
            found.add(" ".join(path))
            return
        for name, child in children.items():
            walk(child, (*path, name))

    walk(typer.main.get_command(app), ())
    return found


def test_every_command_has_a_model() -> None:
    assert _leaf_commands() == set(COMMAND_MODELS)


def test_every_command_takes_json_after_its_name_too() -> None:
    """--json is global: before the command or after it (tail's once was refused after it)."""
    import typer

    def walk(command: Any, path: tuple[str, ...]) -> Iterator[tuple[str, list[str]]]:
        children = getattr(command, "commands", None)
        if children is None:
            yield " ".join(path), [opt for param in command.params for opt in param.opts]
            return
        for name, child in children.items():
            yield from walk(child, (*path, name))

    missing = [name for name, opts in walk(typer.main.get_command(app), ()) if "--json" not in opts]
    assert missing == []


def _validate(result: CliResult, model: type[BaseModel]) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(result.stdout)
    model.model_validate(document)
    return document


def _check_success(result: CliResult, command: str, exit_codes: tuple[int, ...] = (0,)) -> None:
    assert result.exit_code in exit_codes, (command, result.output)
    document = _validate(result, COMMAND_MODELS[command])
    assert document["command"] == command
    assert list(document)[:3] == ["command", "environment", "namespace"]


@pytest.fixture
def json_site() -> Iterator[str]:
    with LocalServer({}, default=Answer(200, b'{"ok": true}', "application/json")) as server:
        yield server.url


def test_every_command_json_validates_on_success(
    run_cli: RunCli,
    cf_env: dict[str, str],
    cf_state: EmulatorState,
    cf_seed: Code24Seed,
    json_site: str,
    tmp_path: Path,
) -> None:
    env = cf_env
    _check_success(run_cli("init", "-c", str(tmp_path / "n.yaml"), "--json"), "init")
    _check_success(run_cli("config", "validate", "--json"), "config validate")
    _check_success(run_cli("config", "show", "--json"), "config show")
    _check_success(run_cli("namespace", "create", "--json", env=env), "namespace create")
    _check_success(run_cli("namespace", "list", "--json", env=env), "namespace list")
    _check_success(run_cli("namespace", "get", "--json", env=env), "namespace get")
    _check_success(run_cli("bind", "--json", env=env), "bind")
    _check_success(run_cli("workers", "--json", env=env), "workers")
    put = run_cli("secret", "put", "brand-worker", "K", "--json", env=env, input="v-123456")
    _check_success(put, "secret put")
    _check_success(run_cli("secret", "list", "brand-worker", "--json", env=env), "secret list")
    delete = run_cli("secret", "delete", "brand-worker", "K", "--json", env=env)
    _check_success(delete, "secret delete")
    _check_success(run_cli("deploy", "--json", env=env), "deploy")
    _check_success(run_cli("apply", "--yes", "--json", env=env), "apply")
    doctor = run_cli("doctor", "--base-url", json_site, "--json", env=env)
    _check_success(doctor, "doctor", (0, 1))
    probe = run_cli("probe", "--base-url", json_site, "--json")
    _check_success(probe, "probe")
    _check_success(run_cli("unbind", "brand-worker", "--yes", "--json", env=env), "unbind")
    _check_success(
        run_cli("namespace", "delete", NAMESPACE, "--yes", "--json", env=env), "namespace delete"
    )
    assert cf_state.namespace(cf_seed.account_id, NAMESPACE) is None


SERVE_JSON = "serve --port 0 --json --access-log off"


def test_serve_json_validates() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "code24ctl", *argv(SERVE_JSON), "-c", str(REPO_CONFIG)],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
    finally:
        proc.terminate()
        proc.wait(30)
    document = json.loads(line)
    COMMAND_MODELS["serve"].model_validate(document)
    assert (document["command"], document["environment"]) == ("serve", "local")


# A way to make each command fail before it does anything: an unknown environment for those
# that take one, otherwise what fails them.
FAILURES: dict[str, list[str]] = {
    "init": ["init", "-c", str(REPO_CONFIG)],  # exists: never overwritten
    "config validate": ["config", "validate", "-c", "/nonexistent/namespaces.yaml"],
    "namespace list": ["namespace", "list"],  # no token
    "namespace delete": ["namespace", "delete", "Not A Name", "--yes"],
    "secret list": ["secret", "list", "brand-worker"],
    "secret put": ["secret", "put", "brand-worker", "K"],
    "secret delete": ["secret", "delete", "brand-worker", "K"],
    "unbind": ["unbind", "brand-worker", "--yes"],
}


@pytest.mark.parametrize("command", sorted(COMMAND_MODELS))
def test_every_command_json_failure_is_one_error_document(
    run_cli: RunCli, command: str, tmp_path: Path
) -> None:
    args = FAILURES.get(command, [*command.split(), "--env", "nope"])
    result = run_cli(*args, "--json", env={"COLUMNS": "200"})
    assert result.exit_code != 0, result.output
    document = _validate(result, ErrorDocument)
    error = document["error"]
    assert error["exit_status"] == result.exit_code
    assert error["code"] in ERROR_CODES
    assert error["message"] and error["message"] in result.stderr


# serve's metrics after one JSON request (the names and labels of `serve --metrics-port`).
_LABELS = 'worker="brand-worker",route="/elite/brand"'
ONE_REQUEST_METRICS = f"""\
# TYPE code24_dispatch_requests_total counter
code24_dispatch_requests_total{{{_LABELS},status="200",fallback_reason=""}} 1.0
# TYPE code24_dispatch_duration_seconds histogram
code24_dispatch_duration_seconds_bucket{{{_LABELS},le="0.01"}} 1.0
code24_dispatch_duration_seconds_bucket{{{_LABELS},le="+Inf"}} 1.0
code24_dispatch_duration_seconds_count{{{_LABELS}}} 1.0
code24_dispatch_duration_seconds_sum{{{_LABELS}}} 0.004
""".encode()


def test_release_plan_and_stats_json_validate_on_success(
    run_cli: RunCli,
    cf_env: dict[str, str],
    cf_state: EmulatorState,
    cf_seed: Code24Seed,
    cf_site: VersionSite,
    tmp_path: Path,
) -> None:
    def change(data: dict[str, Any]) -> None:
        # Releases probe their version through the override; rollback probes afterwards.
        data["environments"]["staging"]["base_url"] = cf_site.url
        data["environments"]["local"]["metrics_url"] = metrics_url

    metrics_text = Answer(200, ONE_REQUEST_METRICS, "text/plain; version=0.0.4; charset=utf-8")
    with LocalServer({"/metrics": metrics_text}) as metrics:
        metrics_url = metrics.url + "/metrics"
        config = write_config(tmp_path, change)

        def cli(*args: str, **kwargs: Any) -> CliResult:
            return run_cli(*args, "--json", env=cf_env, config=config, **kwargs)

        cf_state.add_namespace(cf_seed.account_id, NAMESPACE)
        _check_success(cli("plan"), "plan")
        _check_success(cli("deploy"), "deploy")
        assert cli("deploy", "--gradual", "10").exit_code == 0
        _check_success(cli("versions"), "versions")
        _check_success(cli("promote", "--yes"), "promote")
        _check_success(cli("rollback", "--yes"), "rollback")
        # A plain deploy of a changed dispatcher: probed through the override, then 100% ...
        data = yaml.safe_load(config.read_text(encoding="utf-8"))
        data["environments"]["staging"].setdefault("vars", {})["FEATURE"] = "on"
        config.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        _check_success(cli("deploy"), "deploy")
        # ... and one whose new version fails that probe (exit 1, the deployment put back).
        data["environments"]["staging"]["vars"]["FEATURE"] = "off"
        config.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        serving = set(cf_state.versions.split(cf_seed.account_id, DISPATCHER))
        cf_site.choose = lambda version: None if version in serving else HTML_PAGE
        _check_success(cli("deploy"), "deploy", (1,))
        # One request is too few for the kpi targets (exit 1); the document still validates.
        _check_success(cli("stats", "--env", "local"), "stats", (0, 1))


# --------------------------------------------------------------------------------------------
# The README's examples follow the same models


def _readme_examples() -> list[tuple[list[str], str]]:
    """Each ``$ ... code24ctl ... --json`` in the README's console blocks: its words, and the
    document printed under it (up to the next prompt or the block's end)."""
    examples: list[tuple[list[str], str]] = []
    lines = (REPO_ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    words: list[str] | None = None
    printed: list[str] = []
    for line in [*lines, "```"]:
        text = line.strip()
        if words is not None and (text.startswith(("$ ", "```"))):
            examples.append((words, "\n".join(printed)))
            words = None
        if text.startswith("$ ") and "code24ctl" in text and "--json" in text.split():
            words, printed = text.split(), []
        elif words is not None:
            printed.append(text)
    return examples


def _readme_command(words: list[str]) -> str:
    """The command an example runs, as ``COMMAND_MODELS`` names it (options left out)."""
    named = [w for w in words[words.index("code24ctl") + 1 :] if not w.startswith("-")]
    for size in range(len(named), 0, -1):
        if " ".join(named[:size]) in COMMAND_MODELS:
            return " ".join(named[:size])
    raise AssertionError(f"no command in {' '.join(words)}")


def _readme_document(printed: str) -> dict[str, Any]:
    """The example's JSON, with the README's ``...`` (items left out) taken out."""
    import re

    whole = re.sub(r",\s*\n\s*\.\.\.\s*\n", "\n", printed)
    document: dict[str, Any] = json.loads(whole)
    return document


README_EXAMPLES = _readme_examples()


def test_the_readme_has_json_examples_to_check() -> None:
    commands = {_readme_command(words) for words, _ in README_EXAMPLES}
    assert {"bind", "workers"} <= commands


@pytest.mark.parametrize(
    ("words", "printed"), README_EXAMPLES, ids=[" ".join(w) for w, _ in README_EXAMPLES]
)
def test_readme_json_example_validates(words: list[str], printed: str) -> None:
    document = _readme_document(printed)
    if "error" in document:
        ErrorDocument.model_validate(document)
        assert document["error"]["code"] in ERROR_CODES
        return
    command = _readme_command(words)
    model = COMMAND_MODELS[command]
    model.model_validate(document)
    assert document["command"] == command
    # The README shows the document as printed: the model's own order, envelope first.
    built = model.model_validate(document)
    assert isinstance(built, Document)
    assert list(document) == list(built.printed())
