"""``code24ctl apply``: the environment from the config, in order.

``apply`` shows the plan ``code24ctl plan`` prints (:mod:`code24ctl.cli.plan`), asks, and
carries it out: namespace create, bind, deploy.
"""

from __future__ import annotations

import json
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
    YesOption,
)
from code24ctl.cli.plan import make_plan, show_plan
from code24ctl.cli.release_view import WaitOption
from code24ctl.constants import DEFAULT_VERSION_WAIT_S
from code24ctl.errors import Aborted, UsageError

if TYPE_CHECKING:
    from code24ctl.ops.apply import ApplyResult, StepResult

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


def apply(
    yes: YesOption = False,
    force: ForceOption = False,
    plan_file: PlanFileOption = None,
    concurrency: ConcurrencyOption = 4,
    config: ConfigOption = None,
    env: EnvOption = None,
    json_output: JsonOption = False,
    unprobed: UnprobedOption = False,
    wait: WaitOption = DEFAULT_VERSION_WAIT_S,
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

    A changed dispatcher is deployed as `deploy` does it: a new version probed through the
    version override at 0% (--wait) before it takes 100%, a failing probe putting the
    deployment back (exit 1); --unprobed uploads it live at 100% at once, not probed.
    """
    from code24ctl.ops.apply import execute_apply, failure
    from code24ctl.ops.bind import BindOptions
    from code24ctl.ops.deploy import Probing
    from code24ctl.ops.saved_plan import check_saved

    saved = _read_plan_file(plan_file) if plan_file is not None else None
    if saved is not None:
        # The saved plan decides (it is applied exactly); a flag that says otherwise is a
        # mistake to point out, not to drop without a word.
        for flag, given in (("--force", force), ("--unprobed", unprobed)):
            recorded = bool(saved.get(flag.lstrip("-"), False))
            if given and not recorded:
                raise UsageError(
                    f"{flag} was not given to the plan saved in {plan_file}: a saved plan is "
                    "applied as it was made",
                    hint="make the plan again with `code24ctl plan --env ENV --out FILE "
                    f"{flag}`, or leave {flag} out",
                )
        force = bool(saved.get("force", False))
        unprobed = bool(saved.get("unprobed", False))
    session, made = make_plan(
        config, env, force, concurrency, "apply", ignore_rollout=ignore_rollout, unprobed=unprobed
    )
    if saved is not None:
        check_saved(saved, made)
    if not json_output or (not yes and saved is None and output.is_terminal()):
        show_plan(made)
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
            probing=Probing(unprobed=unprobed, wait_s=wait, say=output.note),
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
