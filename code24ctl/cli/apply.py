"""``code24ctl apply`` and ``code24ctl plan``: the environment from the config, in order.

``plan`` prints what ``apply`` would do (and can save it); ``apply`` shows the same plan, asks,
and carries it out: namespace create, bind, deploy.
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
    YesOption,
    load,
)
from code24ctl.constants import DEFAULT_WORKER_CONCURRENCY
from code24ctl.errors import Aborted, CheckFailed, UsageError

if TYPE_CHECKING:
    from code24ctl.cloudflare.session import CloudflareSession
    from code24ctl.ops.apply import ApplyPlan, ApplyResult, StepResult

PlanFileOption = Annotated[
    Path | None,
    typer.Option(
        "--plan-file",
        metavar="FILE",
        dir_okay=False,
        help="apply exactly the plan saved by `code24ctl plan --out FILE`; refused when the "
        "account or the config changed since",
    ),
]
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

    _session, made = _plan(config, env, force, concurrency, "plan")
    if out is not None:
        _save(out, made)
    if json_output:
        from code24ctl.cli.schemas import PlanCommandDocument

        output.emit(PlanCommandDocument(**dict(made.document)))
    else:
        _show_plan(made, to_stdout=True)
    refused = refusal(made, applying=False)
    if refused is not None:
        raise refused
    if exit_code and made.has_changes:
        raise CheckFailed(
            f"{made.document.summary.changes} change(s) pending in {made.environment}"
        )


def apply(
    yes: YesOption = False,
    force: ForceOption = False,
    plan_file: PlanFileOption = None,
    concurrency: ConcurrencyOption = 4,
    config: ConfigOption = None,
    env: EnvOption = None,
    json_output: JsonOption = False,
    ignore_rollout: Annotated[
        bool,
        typer.Option(
            "--ignore-rollout",
            metavar="",
            help="deploy a new dispatcher even over an unfinished gradual rollout",
        ),
    ] = False,
) -> None:
    """Set the environment up from the config: namespace create, bind, deploy, in order.

    Shows the plan (+ create, ~ update with each field old -> new, - delete) and asks first;
    --yes skips the question, and without a terminal it refuses unless --yes. A plan holding a
    problem (a Worker to copy that does not exist, a route owned by another Worker) stops
    before anything is written. Stops at the first failing step and says what to do next
    (exit 3). A rerun finishes the job; an unchanged config writes nothing. --plan-file
    applies a saved plan (from `code24ctl plan --out`) without asking, or refuses it (exit 2)
    when the account changed since.
    """
    from code24ctl.ops.apply import check_saved, execute_apply, failure
    from code24ctl.ops.bind import BindOptions

    saved = _read_plan_file(plan_file) if plan_file is not None else None
    if saved is not None:
        force = bool(saved.get("force", False))
    session, made = _plan(config, env, force, concurrency, "apply", ignore_rollout=ignore_rollout)
    if saved is not None:
        check_saved(saved, made)
    if not json_output or (not yes and saved is None and output.is_terminal()):
        _show_plan(made)
    env_name = made.environment
    # A plan with problems is not worth a question: execute_apply refuses it unwritten.
    if made.has_changes and saved is None and not made.document.problems:
        question = f"Apply these changes to {env_name}?"
        nothing = f"nothing was changed in {env_name}"
        if not output.confirm(question, yes=yes, nothing_done=nothing):
            raise Aborted(nothing)
    elif not made.has_changes and not made.document.problems and not json_output:
        output.note("nothing to change: every step is already in place")
    done: list[StepResult] = []

    def on_step(step: StepResult) -> None:
        done.append(step)
        if not json_output:
            _show_step(step)

    def progress() -> str:
        steps = ", ".join(f"{s.step} {s.status}" for s in done) or "before the first step"
        return f"during apply ({steps})"

    with output.interruptible("apply", f"code24ctl apply --env {env_name}", progress):
        result = execute_apply(
            session,
            made,
            options=BindOptions(concurrency=concurrency),
            on_step=on_step,
        )
    if json_output:
        from code24ctl.cli.schemas import ApplyDocument

        output.emit(
            ApplyDocument(**dict(result), namespace=made.bind.namespace, summary=result.counts())
        )
    else:
        _show_outcome(result)
    if not result.ok:
        raise failure(result)


def _plan(
    config: str | None,
    env: str | None,
    force: bool,
    concurrency: int,
    command: str,
    *,
    ignore_rollout: bool = False,
) -> tuple[CloudflareSession, ApplyPlan]:
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


def _read_plan_file(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"cannot read the plan file {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise UsageError(f"the plan file {path} is not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise UsageError(f"the plan file {path} is not a code24ctl plan")
    return document


def _show_plan(made: ApplyPlan, *, to_stdout: bool = False) -> None:
    from code24ctl.cli.plan_view import plan_lines

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
    summary = document.summary
    if to_stdout:
        say(
            f"{summary.create} to create, {summary.update} to update, {summary.delete} to delete"
            + (f", {summary.problems} problem(s)" if summary.problems else "")
        )


def _show_step(step: StepResult) -> None:
    output.note(f"{step.step}: {step.status}: {step.detail}")


def _show_outcome(result: ApplyResult) -> None:
    env = result.environment
    pending = sum(len(names) for names in result.secrets_to_set.values())
    if pending:
        output.note(
            f"{pending} secret(s) still to set (values cannot be copied): "
            f"`code24ctl workers --env {env}` lists them"
        )
    if result.ok:
        output.stdout().print(f"{env} is set up: namespace, workers and dispatcher", markup=False)
