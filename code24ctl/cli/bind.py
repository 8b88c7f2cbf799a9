"""``code24ctl bind``: put the configured workers into the environment's dispatch namespace."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from code24ctl.cli import output
from code24ctl.cli.options import (
    ConcurrencyOption,
    ConfigOption,
    DryRunOption,
    EnvOption,
    JsonOption,
    load,
)
from code24ctl.constants import DEFAULT_WORKER_CONCURRENCY

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

    from code24ctl.ops.bind import BindReport, BindRow

AliasesArgument = Annotated[
    list[str] | None,
    typer.Argument(metavar="ALIAS", help="aliases to bind [default: every configured one]"),
]

_STYLE = {
    "created": "green",
    "updated": "yellow",
    "unchanged": "dim",
    "failed": "bold red",
    "would-create": "green",
    "would-update": "yellow",
}


def bind(
    aliases: AliasesArgument = None,
    dry_run: DryRunOption = False,
    concurrency: ConcurrencyOption = DEFAULT_WORKER_CONCURRENCY,
    config: ConfigOption = None,
    env: EnvOption = None,
    json_output: JsonOption = False,
) -> None:
    """Put the configured workers (all, or the ALIASes named) into the env's namespace.

    A `script` worker is copied from the account (modules, entry point, compatibility date and
    flags, bindings except secrets); a `path` worker is uploaded from disk. Workers that already
    match are left unchanged. Secrets cannot be copied: the summary lists each one still to set
    with `code24ctl secret put ALIAS NAME`. Exit 3 if any worker failed (rerun to finish).
    """
    from code24ctl.cli.session import cloudflare_session
    from code24ctl.ops.bind import bind_workers, select_aliases

    resolved = load(config, env)
    resolved.require_cloudflare()
    selected = select_aliases(resolved, aliases)  # unknown alias: exit 2 before any API call
    session = cloudflare_session(resolved, bulk=True)
    client = session.client
    with _progress(len(selected), enabled=output.is_terminal() and not json_output) as advance:
        report = bind_workers(
            client,
            session.account_id,
            resolved,
            selected,
            concurrency=concurrency,
            dry_run=dry_run,
            on_row=advance,
        )
    if json_output:
        output.emit_json(report.rows)
    else:
        _print_table(report)
    _print_notes(report, resolved.env_name)
    _fail_if_any(report, resolved.env_name)


class _Progress:
    """A rich progress bar on stderr, advanced from the worker threads (or nothing at all)."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.total = total
        self.enabled = enabled
        self._bar: Progress | None = None
        self._task: TaskID | None = None

    def __enter__(self) -> _Progress:
        if self.enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

            self._bar = Progress(
                TextColumn("binding"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.description}"),
                console=output.stderr(),
                transient=True,
            )
            self._bar.start()
            self._task = self._bar.add_task("", total=self.total)
        return self

    def __call__(self, row: BindRow) -> None:
        if self._bar is not None and self._task is not None:
            label = f"{row.alias}: {row.action}"
            self._bar.update(self._task, advance=1, description=label)

    def __exit__(self, *_: object) -> None:
        if self._bar is not None:
            self._bar.stop()


def _progress(total: int, *, enabled: bool) -> _Progress:
    return _Progress(total, enabled)


def _print_table(report: BindReport) -> None:
    table = output.table("alias", "action", "source", "secrets to set")
    for row in report.rows:
        action = f"[{_STYLE[row.action]}]{row.action}[/]"
        table.add_row(row.alias, action, row.source, ", ".join(row.secrets_to_set) or "-")
    output.stdout().print(table)


def _print_notes(report: BindReport, env_name: str) -> None:
    counts = ", ".join(
        f"{report.count(action)} {action}"
        for action in ("created", "updated", "would-create", "would-update", "unchanged", "failed")
        if report.count(action)
    )
    prefix = "dry run, nothing written: " if report.dry_run else ""
    output.note(f"{prefix}{counts} in dispatch namespace {report.namespace}")
    if report.api.throttled:
        output.note(f"the API rate-limited {report.api.throttled} request(s); all were retried")
    for row in report.rows:
        for dropped in row.dropped_bindings:
            output.note(f"{row.alias}: binding {dropped} cannot be copied; recreate it by hand")
    pending = [(row.alias, name) for row in report.rows for name in row.secrets_to_set]
    if pending:
        output.note("secrets still to set (their values cannot be copied):")
        for alias, name in pending:
            output.note(f"  code24ctl secret put {alias} {name} --env {env_name}")
    for row in report.failed:
        named = row.code is None or str(row.code) in (row.error or "")
        code = "" if named else f" (API error {row.code})"
        output.note(f"failed: {row.alias}{code}: {row.error}")
        if row.hint:
            output.note(f"  hint: {row.hint}")


def _fail_if_any(report: BindReport, env_name: str) -> None:
    from code24ctl.errors import CloudflareAPIError

    failed = report.failed
    if failed:
        codes = sorted({row.code for row in failed if row.code is not None})
        raise CloudflareAPIError(
            report.failure_summary(),
            code=codes[0] if len(codes) == 1 else None,
            hint=f"fix what the messages above say, then rerun `code24ctl bind --env {env_name}`: "
            "workers already bound are left unchanged",
        )
