"""``code24ctl apply``: create the namespace, bind the workers, deploy the dispatcher, in order."""

from __future__ import annotations

from typing import TYPE_CHECKING

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
from code24ctl.errors import Aborted

if TYPE_CHECKING:
    from code24ctl.ops.apply import ApplyPlan, ApplyResult, StepResult


def apply(
    yes: YesOption = False,
    force: ForceOption = False,
    concurrency: ConcurrencyOption = DEFAULT_WORKER_CONCURRENCY,
    config: ConfigOption = None,
    env: EnvOption = None,
    json_output: JsonOption = False,
) -> None:
    """Set the environment up from the config: namespace create, bind, deploy, in order.

    Shows the plan (what will be created or changed) and asks first; --yes skips the question,
    and without a terminal it refuses unless --yes. Stops at the first failing step and says
    what to do next (exit 3). A rerun finishes the job; an unchanged config writes nothing.
    """
    from code24ctl.cli.session import cloudflare_session
    from code24ctl.ops.apply import failure, plan_apply, run_apply

    session = cloudflare_session(load(config, env), bulk=True)
    # bind paces its own bulk calls; the few others use the SDK's retries, so an unreachable
    # API fails in seconds rather than after the pacer's long backoff.
    client = session.client
    resolved = session.resolved
    plan = plan_apply(client, session.account_id, resolved, force=force, concurrency=concurrency)
    if not json_output or (not yes and output.is_terminal()):
        _show_plan(plan)
    if plan.has_changes:
        question = f"Apply these changes to {plan.environment}?"
        if not output.confirm(question, yes=yes):
            raise Aborted(f"nothing was changed in {plan.environment}")
    elif not json_output:
        output.note("nothing to change: every step is already in place")
    result = run_apply(
        client,
        session.account_id,
        resolved,
        plan,
        force=force,
        concurrency=concurrency,
        on_step=None if json_output else _show_step,
    )
    if json_output:
        output.emit_json(result)
    else:
        _show_outcome(result)
    if not result.ok:
        raise failure(result)


def _show_plan(plan: ApplyPlan) -> None:
    output.note(f"plan for {plan.environment}:")
    for number, step in enumerate(plan.steps, start=1):
        if not step.changes and not step.problems:
            output.note(f"  {number}. {step.step}: nothing to change")
            continue
        output.note(f"  {number}. {step.step}:")
        for change in step.changes:
            output.note(f"       + {change}")
        for problem in step.problems:
            output.note(f"       ! {problem}")
        if step.unchanged:
            output.note(f"       ({len(step.unchanged)} unchanged)")


def _show_step(step: StepResult) -> None:
    output.note(f"{step.step}: {step.status}: {step.detail}")


def _show_outcome(result: ApplyResult) -> None:
    env = result.environment
    for alias, names in result.secrets_to_set.items():
        for name in names:
            output.note(f"secret still to set: code24ctl secret put {alias} {name} --env {env}")
    if result.ok:
        output.stdout().print(f"{env} is set up: namespace, workers and dispatcher", markup=False)
