"""Unit tests of :mod:`code24ctl.errors`: the one error tree."""

from __future__ import annotations

import pytest

TOKEN = "tok_SECRET_never_print_me_0123456789"


def test_errors_are_scrubbed_at_the_source(monkeypatch: pytest.MonkeyPatch) -> None:
    from code24ctl.errors import CloudflareAPIError

    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", TOKEN)
    error = CloudflareAPIError(f"refused {TOKEN}", code=10000, hint=f"not {TOKEN}")
    # Rows (bind --json, doctor details) carry .message and .hint, not main's report.
    assert (error.message, error.hint) == ("refused ***", "not ***")


# --------------------------------------------------------------------------------------------
# Failure: a failed row's one value


def test_a_failure_is_built_from_its_error() -> None:
    from code24ctl.errors import EXIT_USAGE, CloudflareAPIError, ConfigError, Failure

    api = CloudflareAPIError("upload brand: refused", code=10021, hint="check the script")
    assert Failure.of(api) == Failure(
        "upload brand: refused", "check the script", 10021, 3, "cloudflare_api"
    )
    config = Failure.of(ConfigError("n.yaml", []))
    assert (config.api_code, config.exit_status, config.kind) == (None, EXIT_USAGE, "config")


NAMED_CODES = [
    pytest.param("upload: Cloudflare API error 10021: bad (HTTP 400)", 10021, id="api answer"),
    pytest.param("namespace gone (Cloudflare API error 100119)", 100119, id="namespace missing"),
]
UNNAMED_CODES = [
    pytest.param("the Worker to copy does not exist", 10007, id="wrapped"),
    pytest.param("error 10007 seen before", 10021, id="another number"),
]


@pytest.mark.parametrize(("message", "code"), NAMED_CODES)
def test_a_failure_whose_message_names_its_code_is_shown_as_it_is(message: str, code: int) -> None:
    from code24ctl.errors import Failure

    failure = Failure(message, api_code=code)
    assert failure.names_api_code
    assert failure.with_api_code() == message


@pytest.mark.parametrize(("message", "code"), UNNAMED_CODES)
def test_a_failure_adds_its_api_code_once(message: str, code: int) -> None:
    from code24ctl.errors import Failure

    failure = Failure(message, api_code=code)
    assert not failure.names_api_code
    assert failure.with_api_code() == f"{message} (API error {code})"
    assert Failure(message).with_api_code() == message


def test_a_failed_row_prints_and_reads_back_the_keys_it_always_had() -> None:
    from code24ctl.errors import Failure
    from code24ctl.ops.bind import BindRow
    from code24ctl.ops.unbind import UnbindRow

    failure = Failure("refused", "do this", 10021)
    row = BindRow(alias="a", action="failed", source="path a", failure=failure)
    printed = row.model_dump(mode="json")
    assert list(printed)[:7] == [
        "alias",
        "action",
        "source",
        "secrets_to_set",
        "error",
        "code",
        "hint",
    ]
    assert (printed["error"], printed["code"], printed["hint"]) == ("refused", 10021, "do this")
    assert BindRow.model_validate(printed).failure == failure
    ok = UnbindRow(alias="b", action="deleted").model_dump(mode="json")
    assert ok == {"alias": "b", "action": "deleted", "error": None, "code": None, "hint": None}
    assert UnbindRow.model_validate(ok).failure is None


# --------------------------------------------------------------------------------------------
# Exit statuses: every error class holds the status the README's "Exit status" table gives it

#: Each error class and the status it exits with (the README's table, row by row).
DOCUMENTED_STATUS = {
    "Code24Error": 2,
    "UsageError": 2,
    "ConfigError": 2,
    "Aborted": 2,
    "StalePlan": 2,
    "RouteConflictError": 2,
    "CheckFailed": 1,
    "CloudflareAPIError": 3,
    "NetworkError": 3,
    "ApplyFailed": 3,  # carries its cause's status; 3 when built without one
    "Interrupted": 130,
    "WorkerdStopped": 1,  # serve --runtime workerd: workerd stopped on its own
}


def _every_error_class() -> dict[str, type]:
    import importlib
    import pkgutil

    import code24ctl
    from code24ctl.errors import Code24Error

    for module in pkgutil.walk_packages(code24ctl.__path__, "code24ctl."):
        importlib.import_module(module.name)
    found: dict[str, type] = {}
    todo: list[type] = [Code24Error]
    while todo:
        cls = todo.pop()
        found[cls.__name__] = cls
        todo.extend(cls.__subclasses__())
    return found


def _readme_statuses() -> set[int]:
    import re

    from tests.support.cli import REPO_ROOT

    text = (REPO_ROOT / "README.md").read_text()
    table = text.split("## Exit status", 1)[1].split("\n\n", 2)[1]
    statuses: set[int] = set()
    for row in table.splitlines()[2:]:
        statuses.update(int(n) for n in re.findall(r"\d+", row.split("|")[1]))
    return statuses


def test_every_error_class_exits_with_its_documented_status() -> None:
    classes = _every_error_class()
    # A new error class must be added here, with the status the README gives it.
    assert set(classes) == set(DOCUMENTED_STATUS)
    statuses = {name: cls.exit_code for name, cls in classes.items()}
    statuses["ApplyFailed"] = classes["ApplyFailed"]("x", hint=None).exit_code
    assert statuses == DOCUMENTED_STATUS


def test_the_readme_exit_status_table_names_every_status_an_error_can_have() -> None:
    statuses = _readme_statuses()
    assert statuses == {0, 1, 2, 3, 130, 143, 129}
    assert set(DOCUMENTED_STATUS.values()) <= statuses
    import signal

    from code24ctl.errors import Interrupted, Terminated, interruption_status

    for signum in (signal.SIGTERM, signal.SIGHUP):
        assert interruption_status(Terminated(signum)) in statuses
    assert Interrupted("x", exit_code=143).exit_code in statuses


def test_a_route_conflict_is_a_decision_for_the_user_not_an_api_failure() -> None:
    from code24ctl.errors import RouteConflict, RouteConflictError, error_kind

    error = RouteConflictError("dispatcher", [RouteConflict("a.dev/api/*", "a.dev", "legacy")])
    assert (error.exit_code, error_kind(error)) == (2, "conflict")


def test_the_help_names_the_same_exit_statuses_as_the_readme() -> None:
    import re

    from code24ctl.cli import app

    assert app.info.help is not None
    said = app.info.help.split("Exit status:", 1)[1]
    assert {int(n) for n in re.findall(r"\b\d{1,3}\b", said)} == _readme_statuses()
