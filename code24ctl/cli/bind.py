"""``code24ctl bind``: put the configured workers into the environment's dispatch namespace."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Annotated

import typer

from code24ctl.cli import output
from code24ctl.cli.completion import aliases as complete_aliases
from code24ctl.cli.options import (
    ConcurrencyOption,
    ConfigOption,
    DryRunOption,
    EnvOption,
    JsonOption,
    load,
)
from code24ctl.cli.plan_view import plan_lines
from code24ctl.constants import DEFAULT_WORKER_CONCURRENCY
from code24ctl.errors import EXIT_USAGE, CloudflareAPIError, Code24Error, UsageError

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

    from code24ctl.ops.bind import BindReport, BindRow
    from code24ctl.ops.plan import PlannedChange

AliasesArgument = Annotated[
    list[str] | None,
    typer.Argument(
        metavar="ALIAS",
        help="aliases to bind [default: every configured one]",
        autocompletion=complete_aliases,
    ),
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
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            metavar="",
            help="replace a copy's secret where the source binds the same name as a plain "
            "value (secret → plain_text); refused without it",
        ),
    ] = False,
    config: ConfigOption = None,
    env: EnvOption = None,
    json_output: JsonOption = False,
) -> None:
    """Put the configured workers (all, or the ALIASes named) into the env's namespace.

    A `script` worker is copied from the account (modules, entry point, compatibility date and
    flags, bindings except secrets); a `path` worker is uploaded from disk. Workers that already
    match are left unchanged. Secrets cannot be copied: the summary counts those still to set
    and names the command that lists them. Exit 3 if any worker failed at the API (rerun to
    finish); exit 2 when every failure is local (a missing or unbuilt `path`).
    """
    from code24ctl.cli.session import cloudflare_session
    from code24ctl.ops.bind import BindOptions, execute_bind, plan_bind, select_aliases

    resolved = load(config, env)
    resolved.require_cloudflare()
    selected = select_aliases(resolved, aliases)  # unknown alias: exit 2 before any API call
    session = cloudflare_session(resolved, bulk=True)
    rerun = f"code24ctl bind --env {resolved.env_name}"
    progress = _Progress(len(selected), enabled=not json_output)
    options = BindOptions(concurrency=concurrency, on_row=progress, force=force)
    with progress, output.interruptible("bind", rerun, progress.done):
        plan = plan_bind(session, resolved, selected, options=options)
        if dry_run:
            report = plan.report()
        else:
            progress.start_writing(len(plan.rows))  # every row is reported, unchanged too
            report = execute_bind(session, plan, options=options)
    if json_output:
        _emit(report, resolved.env_name)
    else:
        _print_table(report)
        if dry_run:
            _print_plan(plan.changes())
    _print_notes(report, resolved.env_name)
    _fail_if_any(report, resolved.env_name)


class _Progress:
    """A rich progress bar on stderr, advanced from the worker threads (or nothing at all).

    It also counts, for the report of an interruption: the workers read while planning, then
    the uploads carried out.
    """

    def __init__(self, total: int, enabled: bool) -> None:
        self.total = total
        self.enabled = enabled and output.is_terminal()
        # Without a terminal (CI): one line per worker on stderr instead of a bar.
        # The reads come first ("bind (reading): ..."), then the uploads ("bind: ...").
        self._lines = (
            output.StepLines("bind (reading)", total) if enabled and not self.enabled else None
        )
        self._bar: Progress | None = None
        self._task: TaskID | None = None
        self.writing = False
        self.finished = 0
        self._lock = threading.Lock()  # rows arrive from bind's worker threads

    def start_writing(self, rows: int) -> None:
        """Planning is over; from now on each row is one carried out (an upload, or an
        unchanged worker passed over)."""
        self.writing = True
        self.finished = 0
        if self._lines is not None:
            self._lines = output.StepLines("bind", rows)
        if self._bar is not None and self._task is not None:
            self._bar.reset(self._task, total=self.total)

    def done(self) -> str:
        """How far the run got, for ``interrupted ...``."""
        if not self.writing:
            return f"while reading workers ({self.finished} of {self.total} read)"
        return f"after {self.finished} of {self.total} workers"

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
        with self._lock:
            self.finished += 1
        if self._lines is not None:
            self._lines.step(f"{row.alias}: {row.action}")
        if self._bar is not None and self._task is not None:
            label = f"{row.alias}: {row.action}"
            self._bar.update(self._task, advance=1, description=label)

    def __exit__(self, *_: object) -> None:
        if self._bar is not None:
            self._bar.stop()


def _print_plan(changes: list[PlannedChange]) -> None:

    console = output.stdout()
    if changes:
        console.print()
    for line in plan_lines(changes):
        console.print(line, markup=False)


def _print_table(report: BindReport) -> None:
    rows = [
        [row.alias, f"[{_STYLE[row.action]}]{row.action}[/]", row.source,
         ", ".join(row.secrets_to_set) or "-"]
        for row in report.rows
    ]  # fmt: skip
    output.print_table(
        ["alias", "action", "source", "secrets to set"],
        rows,
        drop_order=["secrets to set", "source"],
    )


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
        if row.dropped_schedules:
            output.note(
                f"warning: {row.alias}: {row.source} runs on cron schedules "
                f"({', '.join(row.dropped_schedules)}); its copy in {report.namespace} keeps "
                "none: a Worker in a dispatch namespace runs only when the dispatcher calls it"
            )
        for dropped in row.dropped_settings:
            output.note(
                f"{row.alias}: {dropped} is not carried: an upload takes only usage_model "
                "standard, which the copy runs on"
            )
    if report.dry_run:
        for row in report.rows:
            if row.carries and row.action in ("would-create", "would-update"):
                output.note(f"{row.alias} carries: {', '.join(row.carries)}")
    pending = sum(len(row.secrets_to_set) for row in report.rows)
    if pending:
        output.note(
            f"{pending} secret(s) still to set (values cannot be copied): "
            f"`code24ctl workers --env {env_name}` lists them"
        )
    keys = [(row.alias, name) for row in report.rows for name in row.secret_keys_to_set]
    if keys:
        # `secret put` only makes secret_text bindings; a WebCrypto key needs its algorithm,
        # format and usages too.
        output.note("secret_key bindings still to set (WebCrypto keys; `secret put` cannot):")
        for alias, name in keys:
            output.note(
                f"  {alias} {name}: PUT .../dispatch/namespaces/{report.namespace}/scripts/"
                f"{alias}/secrets with type secret_key, algorithm, format, usages and the key"
            )
    for row in report.failed:
        if row.failure is not None:
            output.show_failure(row.alias, row.failure)


def _api_code(row: BindRow) -> int | None:
    return row.failure.api_code if row.failure is not None else None


def _fail_if_any(report: BindReport, env_name: str) -> None:

    failed = report.failed
    if failed:
        codes = sorted({code for row in failed if (code := _api_code(row)) is not None})
        hint = (
            f"fix what the messages above say, then rerun `code24ctl bind --env {env_name}`: "
            "workers already bound are left unchanged"
        )
        error: Code24Error
        if all(row.failure is not None and row.failure.exit_status == EXIT_USAGE for row in failed):
            # Only local problems (a missing path, a .ts file): the API was never at fault.
            error = UsageError(report.failure_summary(), hint=hint)
        else:
            error = CloudflareAPIError(
                report.failure_summary(), code=codes[0] if len(codes) == 1 else None, hint=hint
            )
        error.changes = report.changes_made()
        raise error


def _emit(report: BindReport, env_name: str) -> None:
    from code24ctl.cli.schemas import BindDocument

    output.emit(
        BindDocument(
            environment=env_name,
            namespace=report.namespace,
            dry_run=report.dry_run,
            workers=report.rows,
            api=report.api,
            summary=report.counts(),
        )
    )
