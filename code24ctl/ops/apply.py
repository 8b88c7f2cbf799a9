"""``apply``: the whole environment from namespaces.yaml — namespace, bind, deploy, in order.

:func:`plan_apply` reads only and says what each step would create or change;
:func:`run_apply` runs the steps and stops at the first one that fails, saying what to do next.
Every step is idempotent, so a second apply of an unchanged config writes nothing, and a rerun
after a failure finishes the job.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, Field, PrivateAttr

from code24ctl.cloudflare.namespaces import create_namespace, find_namespace
from code24ctl.config import ResolvedConfig
from code24ctl.constants import DEFAULT_WORKER_CONCURRENCY
from code24ctl.errors import EXIT_API, Code24Error
from code24ctl.ops.bind import BindReport, bind_workers, plan_bind
from code24ctl.ops.deploy import DeployResult, plan_deploy, run_deploy

if TYPE_CHECKING:
    from cloudflare import Cloudflare

StepName = Literal["namespace", "bind", "deploy"]
STEPS: tuple[StepName, ...] = ("namespace", "bind", "deploy")


class PlanStep(BaseModel):
    """What one step would do: ``changes`` lists each creation or change (empty: nothing)."""

    step: StepName
    changes: list[str]
    unchanged: list[str] = Field(default_factory=list)
    problems: list[str] = Field(default_factory=list)


class ApplyPlan(BaseModel):
    """The plan shown before anything is written."""

    environment: str
    namespace: str
    dispatcher: str
    steps: list[PlanStep]
    # What the steps read, so running the plan does not read it all again (never serialized).
    _bind: BindReport | None = PrivateAttr(default=None)
    _deploy: DeployResult | None = PrivateAttr(default=None)

    @property
    def has_changes(self) -> bool:
        """Whether any step would write anything."""
        return any(step.changes for step in self.steps)


StepStatus = Literal["done", "unchanged", "failed", "not run"]


class StepResult(BaseModel):
    """What one step did."""

    step: StepName
    status: StepStatus
    detail: str


class ApplyResult(BaseModel):
    """The outcome of ``apply`` (``--json`` prints this, plan included)."""

    environment: str
    plan: ApplyPlan
    steps: list[StepResult]
    ok: bool
    error: str | None = None
    next: str | None = None
    secrets_to_set: dict[str, list[str]] = Field(default_factory=dict)
    # The exit status of the failed step (not serialized: the process exits with it).
    _exit_code: int = PrivateAttr(default=EXIT_API)


class ApplyFailed(Code24Error):
    """A step of apply failed; carries that step's exit status (3 for the API or network)."""

    def __init__(self, message: str, *, hint: str | None, exit_code: int = EXIT_API) -> None:
        super().__init__(message, hint=hint)
        self.exit_code = exit_code


StepCallback = Callable[[StepResult], None]


# --------------------------------------------------------------------------------------------
# Plan


def plan_apply(
    client: Cloudflare,
    account_id: str,
    resolved: ResolvedConfig,
    *,
    force: bool = False,
    concurrency: int = DEFAULT_WORKER_CONCURRENCY,
) -> ApplyPlan:
    """What apply would create or change, step by step, from reads only.

    The plan keeps what it read (each Worker's code, the dispatcher's state), so
    :func:`run_apply` of this plan writes without reading it all again.
    """
    resolved.require_cloudflare()
    namespace = resolved.namespace()
    exists = find_namespace(client, account_id, namespace) is not None
    namespace_step = PlanStep(
        step="namespace",
        changes=[] if exists else [f"create dispatch namespace {namespace}"],
        unchanged=[f"dispatch namespace {namespace} exists"] if exists else [],
    )
    bind = plan_bind(client, account_id, resolved, concurrency=concurrency, namespace_exists=exists)
    deploy = plan_deploy(client, account_id, resolved, force=force, assume_namespace=True)
    plan = ApplyPlan(
        environment=resolved.env_name,
        namespace=namespace,
        dispatcher=resolved.dispatcher(),
        steps=[namespace_step, _bind_step(bind), _deploy_step(deploy)],
    )
    plan._bind = bind
    plan._deploy = deploy
    return plan


def _bind_step(report: BindReport) -> PlanStep:
    step = PlanStep(step="bind", changes=[])
    for row in report.rows:
        if row.action == "would-create":
            step.changes.append(f"create worker {row.alias} ({row.source})")
        elif row.action == "would-update":
            detail = f": {', '.join(row.changes)}" if row.changes else ""
            step.changes.append(f"update worker {row.alias} ({row.source}){detail}")
        elif row.action == "failed":
            step.problems.append(f"worker {row.alias}: {row.error}")
        else:
            step.unchanged.append(f"worker {row.alias}")
    return step


def _deploy_step(result: DeployResult) -> PlanStep:
    step = PlanStep(step="deploy", changes=[])
    if result.kv is not None:
        if result.kv.action == "would create":
            step.changes.append(f"create KV namespace {result.kv.title}")
        else:
            step.unchanged.append(f"KV namespace {result.kv.title}")
    if result.dispatcher_action == "upload":
        step.changes.append(f"upload dispatcher {result.dispatcher}")
    else:
        step.unchanged.append(f"dispatcher {result.dispatcher}")
    for route in result.routes:
        if route.action == "create":
            step.changes.append(f"create route {route.pattern}")
        elif route.action == "update":
            step.changes.append(f"take over route {route.pattern} from {route.owner}")
        elif route.action == "conflict":
            step.problems.append(
                f"route {route.pattern} is routed to {route.owner or 'no Worker'} "
                "(rerun with --force to take it over)"
            )
        else:
            step.unchanged.append(f"route {route.pattern}")
    return step


# --------------------------------------------------------------------------------------------
# Run


def run_apply(
    client: Cloudflare,
    account_id: str,
    resolved: ResolvedConfig,
    plan: ApplyPlan,
    *,
    force: bool = False,
    concurrency: int = DEFAULT_WORKER_CONCURRENCY,
    on_step: StepCallback | None = None,
) -> ApplyResult:
    """Run namespace create, bind and deploy in order; stop at the first failing step.

    Never raises for a failing step: the result says which step failed, why, and what to do
    next (:func:`failure` turns that into the error to exit with).
    """

    env = resolved.env_name
    rerun = f"code24ctl apply --env {env}"
    result = ApplyResult(environment=env, plan=plan, steps=[], ok=True)

    def record(step: StepName, status: StepStatus, detail: str) -> None:
        outcome = StepResult(step=step, status=status, detail=detail)
        result.steps.append(outcome)
        if on_step is not None:
            on_step(outcome)

    def fail(step: StepName, error: str, next_step: str, exit_code: int = EXIT_API) -> ApplyResult:
        record(step, "failed", error)
        for later in STEPS[STEPS.index(step) + 1 :]:
            record(later, "not run", f"{step} failed")
        result.ok = False
        result.error = error
        result.next = next_step
        result._exit_code = exit_code
        return result

    try:
        created = create_namespace(client, account_id, plan.namespace)
    except Code24Error as exc:
        return fail(
            "namespace",
            exc.message,
            exc.hint or f"fix the error above, then {rerun}",
            exc.exit_code,
        )
    if created.created:
        record("namespace", "done", f"created dispatch namespace {plan.namespace}")
    else:
        record("namespace", "unchanged", f"dispatch namespace {plan.namespace} exists")

    try:
        # The plan's downloads are uploaded as they are: nothing is read twice.
        report = bind_workers(
            client, account_id, resolved, concurrency=concurrency, plan=plan._bind
        )
    except Code24Error as exc:
        return fail(
            "bind",
            exc.message,
            exc.hint or f"fix the error above, then {rerun}",
            exc.exit_code,
        )
    result.secrets_to_set = {r.alias: r.secrets_to_set for r in report.rows if r.secrets_to_set}
    if report.failed:
        hints = {r.hint for r in report.failed if r.hint}
        advice = f"{'; '.join(sorted(hints))}; then " if hints else "fix them, then "
        return fail(
            "bind",
            report.failure_summary(with_errors=True),
            f"{advice}rerun `{rerun}` (workers already bound are left unchanged)",
        )
    changed = report.changes
    record(
        "bind",
        "done" if changed else "unchanged",
        f"{report.count('created')} created, {report.count('updated')} updated, "
        f"{report.count('unchanged')} unchanged in {report.namespace}",
    )

    try:
        deployed = run_deploy(client, account_id, resolved, force=force, plan=plan._deploy)
    except Code24Error as exc:
        hint = exc.hint or "fix the error above"
        if "--force" in hint:
            hint = f"rerun `{rerun} --force` to take the routes over for the dispatcher"
        else:
            hint = f"{hint}; then rerun `{rerun}`"
        return fail("deploy", exc.message, hint, exc.exit_code)
    writes = [r for r in deployed.routes if r.applied]
    kv_created = deployed.kv is not None and deployed.kv.action == "created"
    status: StepStatus = "done" if (deployed.uploaded or writes or kv_created) else "unchanged"
    record(
        "deploy",
        status,
        f"dispatcher {deployed.dispatcher} {'uploaded' if deployed.uploaded else 'unchanged'}, "
        f"{len(writes)} route(s) written, "
        f"{sum(r.action == 'unchanged' for r in deployed.routes)} unchanged",
    )
    return result


def failure(result: ApplyResult) -> ApplyFailed:
    """The error a failed apply exits with, naming the step and what to do next.

    Exit 3 for the API or the network (and for workers that failed to bind, as ``bind``
    exits), 2 when the step failed on a usage or config error.
    """
    failed = next(s for s in result.steps if s.status == "failed")
    return ApplyFailed(
        f"apply stopped at step {failed.step}: {result.error}",
        hint=result.next,
        exit_code=result._exit_code,
    )
