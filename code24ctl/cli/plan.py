"""``code24ctl plan``: what ``apply`` would do, read-only (and saved for ``apply --plan-file``).

:func:`make_plan` and :func:`show_plan` are also ``apply``'s first steps: it shows the same plan
before asking.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from code24ctl.cli import output
from code24ctl.cli.options import (
    ConcurrencyOption,
    ConfigOption,
    EnvOption,
    ForceOption,
    JsonOption,
    UnprobedOption,
    load,
)
from code24ctl.cli.plan_view import plan_lines
from code24ctl.constants import DEFAULT_WORKER_CONCURRENCY
from code24ctl.errors import CheckFailed, UsageError

if TYPE_CHECKING:
    from code24ctl.cloudflare.session import CloudflareSession
    from code24ctl.ops.apply import ApplyPlan

OutOption = Annotated[
    Path | None,
    typer.Option("--out", metavar="FILE", dir_okay=False, help="also save the plan (JSON) to FILE"),
]
ExitCodeOption = Annotated[
    bool,
    typer.Option(
        "--exit-code",
        metavar="",
        help="exit 1 when changes are pending, 0 when there is nothing to change",
    ),
]


def plan(
    force: ForceOption = False,
    unprobed: UnprobedOption = False,
    exit_code: ExitCodeOption = False,
    out: OutOption = None,
    concurrency: ConcurrencyOption = DEFAULT_WORKER_CONCURRENCY,
    config: ConfigOption = None,
    env: EnvOption = None,
    json_output: JsonOption = False,
) -> None:
    """Print what `apply` would create (+), update (~, each field old -> new) or delete (-).

    Reads only. --out FILE saves the plan for `apply --plan-file FILE`. With --exit-code the
    status says whether changes are pending: 0 nothing to change, 1 changes pending (like
    `git diff --exit-code`). A plan holding a problem exits with the status of its cause.
    """
    from code24ctl.ops.apply import refusal

    # A plan is only shown: during a split it says what apply would do (and that apply would
    # need --ignore-rollout) instead of refusing.
    _session, made = make_plan(
        config, env, force, concurrency, "plan", ignore_rollout=True, unprobed=unprobed
    )
    if out is not None:
        _save(out, made)
    if json_output:
        from code24ctl.cli.schemas import PlanCommandDocument

        output.emit(PlanCommandDocument(**dict(made.document)))
    else:
        show_plan(made, to_stdout=True)
    refused = refusal(made, applying=False)
    if refused is not None:
        raise refused
    if exit_code and made.has_changes:
        raise CheckFailed(
            f"{made.document.summary.changes} change(s) pending in {made.environment}"
        )


def make_plan(
    config: str | None,
    env: str | None,
    force: bool,
    concurrency: int,
    command: str,
    *,
    ignore_rollout: bool = False,
    unprobed: bool = False,
) -> tuple[CloudflareSession, ApplyPlan]:
    """Read the account and plan the environment, saying how far reading got (``command``:
    the command named in the progress and interruption lines)."""
    from code24ctl.cli.session import cloudflare_session
    from code24ctl.ops.apply import plan_apply
    from code24ctl.ops.bind import BindOptions

    resolved = load(config, env)
    session = cloudflare_session(resolved, bulk=True, pages=output.page_lines)
    reading = _Reading(enabled=output.is_terminal())
    name = resolved.env_name
    with (
        output.interruptible("plan", f"code24ctl {command} --env {name}", reading.done),
        output.heartbeat(f"{command}: planning {name}"),
    ):
        made = plan_apply(
            session,
            resolved,
            force=force,
            options=BindOptions(concurrency=concurrency, on_row=reading),
            ignore_rollout=ignore_rollout,
            unprobed=unprobed,
        )
    reading.stop()
    return session, made


class _Reading:
    """Planning reads every worker: a line on a terminal says how far it got."""

    def __init__(self, *, enabled: bool) -> None:
        self.enabled = enabled
        self.read = 0
        self._lock = threading.Lock()  # rows arrive from bind's worker threads

    def __call__(self, row: Any) -> None:
        with self._lock:
            self.read += 1
            if self.enabled:
                output.stderr().print(f"reading workers: {self.read} ({row.alias})", end="\r")

    def stop(self) -> None:
        if self.enabled and self.read:
            output.stderr().print(" " * 60, end="\r")

    def done(self) -> str:
        return f"while planning ({self.read} worker(s) read)"


def _save(path: Path, made: ApplyPlan) -> None:
    text = json.dumps(made.document.model_dump(mode="json"), indent=2) + "\n"
    try:
        output.write_file(path, text)
    except OSError as exc:
        raise UsageError(f"cannot write the plan to {path}: {exc.strerror or exc}") from None
    output.note(f"saved the plan to {path}")


def show_plan(made: ApplyPlan, *, to_stdout: bool = False) -> None:
    """The plan on stderr (``apply``, before its question) or on stdout (``plan``)."""

    say: Callable[[str], None] = output.note
    if to_stdout:
        console = output.stdout()

        def say(line: str) -> None:
            console.print(line, markup=False)

    document = made.document
    say(f"plan for {document.environment}:")
    for number, step in enumerate(document.steps, start=1):
        if not step.changes and not step.problems:
            say(f"  {number}. {step.step}: nothing to change")
            continue
        say(f"  {number}. {step.step}:")
        for line in plan_lines(step.changes, indent="       "):
            say(line)
        for problem in step.problems:
            say(f"       ! {problem.message}")
        if step.unchanged:
            say(f"       ({len(step.unchanged)} unchanged)")
    if document.rollout is not None and document.rollout_ends:
        say(
            f"  rollout in progress ({document.rollout}): the dispatcher upload would end it "
            "at 100% of a new version; apply needs --ignore-rollout for that, or finish the "
            f"rollout first (code24ctl promote / rollback --env {document.environment})"
        )
    elif document.rollout is not None:
        say(f"  rollout in progress ({document.rollout}): apply leaves it as it is")
    summary = document.summary
    if to_stdout:
        say(
            f"{summary.create} to create, {summary.update} to update, {summary.delete} to delete"
            + (f", {summary.problems} problem(s)" if summary.problems else "")
        )
