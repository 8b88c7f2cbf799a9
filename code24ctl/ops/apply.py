"""``apply``: the whole environment from namespaces.yaml — namespace, bind, deploy, in order.

:func:`plan_apply` reads only and returns an :class:`ApplyPlan`: what each step would create
(``+``), update (``~``, with each field old -> new) or delete (``-``), the problems that would
stop it, and a digest of everything it read. :func:`execute_apply` refuses a plan that holds a
problem before writing anything, then runs the steps and stops at the first one that fails,
saying what to do next. Every step is idempotent, so a second apply of an unchanged config
writes nothing, and a rerun after a failure finishes the job.

A plan's :attr:`ApplyPlan.document` is what ``code24ctl plan --out`` saves;
:func:`~code24ctl.ops.saved_plan.check_saved` compares a saved document with a fresh plan, so
``apply --plan-file`` applies exactly what was reviewed or refuses because the account (or the
config) changed since.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import BaseModel, Field

from code24ctl.cloudflare.modules import fingerprint
from code24ctl.cloudflare.namespaces import create_namespace
from code24ctl.config import ResolvedConfig
from code24ctl.errors import (
    EXIT_API,
    EXIT_USAGE,
    Change,
    Code24Error,
    Failure,
    Interrupted,
    RouteConflictError,
)
from code24ctl.ops.bind import BindOptions, BindPlan, execute_bind, plan_bind
from code24ctl.ops.changes import ChangeLog
from code24ctl.ops.deploy import (
    DeployPlan,
    Probing,
    execute_deploy,
    needs_probe,
    plan_deploy,
)
from code24ctl.ops.deploy_probed import check_probe_settings, deploy_failure
from code24ctl.ops.failures import HoldsFailure
from code24ctl.ops.plan import PlannedChange, PlanSummary, digest, summarize
from code24ctl.ops.release import rollout_error, rollout_in_progress
from code24ctl.ops.release_state import read_release_state
from code24ctl.ops.unbind import bound_names
from code24ctl.probe.report import ProbeReport

if TYPE_CHECKING:
    from code24ctl.cloudflare.session import CloudflareSession

StepName = Literal["namespace", "bind", "deploy"]
STEPS: tuple[StepName, ...] = ("namespace", "bind", "deploy")
PLAN_FORMAT = 1


class PlanProblem(BaseModel):
    """Something the plan found that stops it: named once, with what to do about it."""

    step: StepName
    message: str
    hint: str | None = None
    exit_status: int = Field(default=EXIT_API, exclude=True)


class PlanStep(BaseModel):
    """What one step would do: its changes, what it leaves alone, and its problems."""

    step: StepName
    changes: list[PlannedChange] = Field(default_factory=list)
    unchanged: list[str] = Field(default_factory=list)
    problems: list[PlanProblem] = Field(default_factory=list)


class PlanDocument(BaseModel):
    """The plan as ``plan --json`` prints it and ``plan --out`` saves it.

    ``read_digest`` stands for everything the plan read (and the config it was made from):
    a saved plan is applied only while a fresh plan has the same digest.
    """

    command: str = "plan"
    format: int = PLAN_FORMAT
    environment: str
    namespace: str
    dispatcher: str
    force: bool = False
    # A changed dispatcher goes live at 100% without a probe (--unprobed).
    unprobed: bool = False
    summary: PlanSummary
    steps: list[PlanStep]
    # The split deployment serving now (release state words), if any.
    rollout: str | None = None
    # Whether the plan's dispatcher upload would end that split.
    rollout_ends: bool = False
    read_digest: str = ""

    @property
    def has_changes(self) -> bool:
        """Whether any step would write anything."""
        return self.summary.changes > 0

    @property
    def problems(self) -> list[PlanProblem]:
        """Every problem of every step, in step order."""
        return [problem for step in self.steps for problem in step.problems]


@dataclass(frozen=True)
class ApplyPlan:
    """A plan, with what its steps read so carrying it out does not read it all again."""

    document: PlanDocument
    bind: BindPlan
    deploy: DeployPlan

    @property
    def environment(self) -> str:
        """The environment the plan is for."""
        return self.document.environment

    @property
    def has_changes(self) -> bool:
        """Whether any step would write anything."""
        return self.document.has_changes


StepStatus = Literal["done", "unchanged", "failed", "not run"]


class StepResult(BaseModel):
    """What one step did."""

    step: StepName
    status: StepStatus
    detail: str
    #: The deploy step's probe of the new dispatcher version through the override (None: the
    #: upload was not probed, or there was no upload).
    probe: ProbeReport | None = None
    #: The deploy step's reason an upload took traffic without a probe (a first deploy,
    #: --unprobed).
    unprobed: str | None = None


class ApplyResult(HoldsFailure):
    """The outcome of ``apply`` (``--json`` prints this, plan included).

    A failed apply holds the failed step's :class:`Failure` (the process exits with its
    status), printed as ``error`` and ``next`` (its hint) after ``ok``.
    """

    failure_keys: ClassVar[tuple[str, str | None, str]] = ("error", None, "next")
    failure_after: ClassVar[str] = "ok"

    environment: str
    plan: PlanDocument
    steps: list[StepResult]
    ok: bool
    secrets_to_set: dict[str, list[str]] = Field(default_factory=dict)
    #: Every write carried out, in order (what is live now, when a step failed).
    changes: list[Change] = Field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """The ``summary`` of ``apply --json``: steps by status, and the secrets still to set."""
        statuses: tuple[StepStatus, ...] = ("done", "unchanged", "failed", "not run")
        counts = {
            status.replace(" ", "_"): sum(s.status == status for s in self.steps)
            for status in statuses
        }
        counts["secrets_to_set"] = sum(len(names) for names in self.secrets_to_set.values())
        return counts


class ApplyFailed(Code24Error):
    """A step of apply failed, or its plan holds problems; carries the cause's exit status."""

    def __init__(self, message: str, *, hint: str | None, exit_code: int = EXIT_API) -> None:
        super().__init__(message, hint=hint)
        self.exit_code = exit_code


StepCallback = Callable[[StepResult], None]


# --------------------------------------------------------------------------------------------
# Plan


def plan_apply(
    session: CloudflareSession,
    resolved: ResolvedConfig,
    *,
    force: bool = False,
    options: BindOptions | None = None,
    ignore_rollout: bool = False,
    unprobed: bool = False,
) -> ApplyPlan:
    """What apply would create, update or delete, step by step, from reads only.

    A new dispatcher upload over an unfinished gradual rollout is refused (exit 2) unless
    ``ignore_rollout``: the upload would end the rollout at 100% of a third version. With
    ``ignore_rollout`` the plan names the rollout it would end (``rollout``): ``plan`` shows
    it and still exits 0 or 1.

    The plan keeps what it read (each Worker's code, the dispatcher's state), so
    :func:`execute_apply` of this plan writes without reading it all again. ``unprobed``:
    a changed dispatcher is planned live at 100% by script PUT, not probed first.
    """
    resolved.require_cloudflare()
    namespace = resolved.namespace()
    deploy = plan_deploy(session, resolved, force=force, unprobed=unprobed)
    rollout = None
    if deploy.namespace_exists:
        # Read once: a split is named in the plan whether or not apply would end it.
        state = read_release_state(session, resolved)
        if state.kind == "split":
            rollout = state.words
            if deploy.dispatcher_action == "upload" and not ignore_rollout:
                split = rollout_in_progress(session, resolved)
                if split is not None:
                    error = rollout_error(
                        resolved, split, "apply would replace it with a new version", session
                    )
                    error.hint = f"{error.hint}, or rerun apply with --ignore-rollout"
                    raise error
    existing = bound_names(session, namespace) if deploy.namespace_exists else set()
    # --force also lets a copy's secret become the source's plain value (secret → plain_text).
    options = dataclasses.replace(options or BindOptions(), force=force)
    bind = plan_bind(session, resolved, options=options, existing=existing)
    steps = [_namespace_step(namespace, deploy.namespace_exists), _bind_step(bind)]
    steps.append(_deploy_step(deploy, resolved.env_name))
    changes = [change for step in steps for change in step.changes]
    problems = [problem.message for step in steps for problem in step.problems]
    document = PlanDocument(
        environment=resolved.env_name,
        namespace=namespace,
        dispatcher=resolved.dispatcher(),
        force=force,
        unprobed=unprobed,
        summary=summarize(changes, problems),
        steps=steps,
        rollout=rollout,
        rollout_ends=rollout is not None and deploy.dispatcher_action == "upload",
    )
    read = {
        "plan": document.model_dump(mode="json"),
        "uploads": {
            alias: [fingerprint(code.modules), code.metadata()]
            for alias, code in sorted(bind.codes.items())
        },
        "dispatcher": deploy.metadata,
    }
    document.read_digest = digest(read)
    return ApplyPlan(document=document, bind=bind, deploy=deploy)


def _namespace_step(namespace: str, exists: bool) -> PlanStep:
    if exists:
        return PlanStep(step="namespace", unchanged=[f"dispatch namespace {namespace} exists"])
    created = PlannedChange(action="create", kind="dispatch namespace", name=namespace)
    return PlanStep(step="namespace", changes=[created])


def _bind_step(plan: BindPlan) -> PlanStep:
    step = PlanStep(step="bind", changes=plan.changes())
    for row in plan.rows:
        if row.failure is not None:
            step.problems.append(
                PlanProblem(
                    step="bind",
                    message=f"worker {row.alias}: {row.failure.message}",
                    hint=row.failure.hint,
                    exit_status=row.failure.exit_status,
                )
            )
        elif row.action == "unchanged":
            step.unchanged.append(f"worker {row.alias}")
    return step


def _deploy_step(plan: DeployPlan, env_name: str) -> PlanStep:
    step = PlanStep(step="deploy", changes=plan.changes())
    if plan.kv is not None and plan.kv.id is not None:
        step.unchanged.append(f"KV namespace {plan.kv.title}")
    if plan.dispatcher_action == "unchanged":
        step.unchanged.append(f"dispatcher {plan.dispatcher}")
    for route in plan.routes:
        if route.action == "unchanged":
            step.unchanged.append(f"route {route.pattern}")
        elif route.action == "conflict":
            step.problems.append(
                PlanProblem(
                    step="deploy",
                    message=f"route {route.pattern} is routed to {route.owner or 'no Worker'}",
                    hint=f"rerun `code24ctl apply --env {env_name} --force` to take it over "
                    "for the dispatcher, or remove it from the environment's routes",
                    exit_status=EXIT_USAGE,  # as RouteConflictError: the user decides
                )
            )
    return step


def refusal(plan: ApplyPlan, *, applying: bool = True) -> ApplyFailed | None:
    """The error for a plan that holds problems (None when it holds none).

    The problems themselves are in the plan (shown once, with it); the error counts them and
    exits with the status of the worst cause (3 for the API, 2 for usage or config).
    ``applying`` False words it for a plan only shown (``code24ctl plan``).
    """
    problems = plan.document.problems
    if not problems:
        return None
    hints = list(dict.fromkeys(p.hint for p in problems if p.hint))
    message = (
        f"apply stopped before writing anything: {_holds(plan)}"
        if applying
        else f"{_holds(plan)}; apply would stop before writing anything"
    )
    return ApplyFailed(
        message,
        hint="; ".join(hints) or "fix them, then rerun",
        exit_code=max(p.exit_status for p in problems),
    )


def _holds(plan: ApplyPlan) -> str:
    count = len(plan.document.problems)
    return (
        f"the plan for {plan.environment} holds {count} problem{'s' if count != 1 else ''} "
        "(listed with the plan)"
    )


# --------------------------------------------------------------------------------------------
# Execute


def execute_apply(
    session: CloudflareSession,
    plan: ApplyPlan,
    *,
    options: BindOptions | None = None,
    on_step: StepCallback | None = None,
    probing: Probing | None = None,
) -> ApplyResult:
    """Run namespace create, bind and deploy in order; stop at the first failing step.

    A plan that holds problems is not started: every step is ``not run`` and nothing is
    written. Never raises for a failing step: the result says which step failed, why, what
    to do next (:func:`failure` turns that into the error to exit with) and what was written
    before (``changes``); an interruption leaves carrying those changes. A changed dispatcher
    is probed before it takes traffic (``probing``, :func:`~code24ctl.ops.deploy.
    execute_deploy`); one the config cannot probe is refused before any step writes.
    """
    probing = probing or Probing(unprobed=plan.document.unprobed)
    if refusal(plan) is None and needs_probe(plan.deploy, probing):
        check_probe_settings(plan.bind.resolved)
    log = ChangeLog()
    with log.carried():
        return _execute(session, plan, options, on_step, log, probing)


def _execute(
    session: CloudflareSession,
    plan: ApplyPlan,
    options: BindOptions | None,
    on_step: StepCallback | None,
    log: ChangeLog,
    probing: Probing,
) -> ApplyResult:
    env = plan.environment
    namespace = plan.document.namespace
    rerun = f"code24ctl apply --env {env}"
    result = ApplyResult(environment=env, plan=plan.document, steps=[], ok=True)
    refused = refusal(plan)
    if refused is not None:
        result.steps = [
            StepResult(step=step, status="not run", detail="the plan holds problems")
            for step in STEPS
        ]
        result.ok = False
        result.failure = dataclasses.replace(Failure.of(refused), message=_holds(plan))
        return result

    def record(
        step: StepName,
        status: StepStatus,
        detail: str,
        probe: ProbeReport | None = None,
        unprobed: str | None = None,
    ) -> None:
        outcome = StepResult(
            step=step, status=status, detail=detail, probe=probe, unprobed=unprobed
        )
        result.steps.append(outcome)
        if on_step is not None:
            on_step(outcome)

    def fail(step: StepName, failure: Failure, probe: ProbeReport | None = None) -> ApplyResult:
        record(step, "failed", failure.message, probe=probe)
        for later in STEPS[STEPS.index(step) + 1 :]:
            record(later, "not run", f"{step} failed")
        changes = tuple(dict.fromkeys((*log.changes, *failure.changes)))
        result.ok = False
        result.failure = dataclasses.replace(failure, changes=changes)
        result.changes = list(changes)
        return result

    def failed(exc: Code24Error, next_step: str) -> Failure:
        return dataclasses.replace(Failure.of(exc), hint=next_step)

    try:
        created = create_namespace(session, namespace)
    except Code24Error as exc:
        return fail("namespace", failed(exc, exc.hint or f"fix the error above, then {rerun}"))
    if created.created:
        log.record("dispatch namespace", namespace, "created")
        record("namespace", "done", f"created dispatch namespace {namespace}")
    else:
        record("namespace", "unchanged", f"dispatch namespace {namespace} exists")

    try:
        # The plan's downloads are uploaded as they are: nothing is read twice.
        report = execute_bind(session, plan.bind, options=options, log=log)
    except Code24Error as exc:
        return fail("bind", failed(exc, exc.hint or f"fix the error above, then {rerun}"))
    result.secrets_to_set = {r.alias: r.secrets_to_set for r in report.rows if r.secrets_to_set}
    if report.failed:
        hints = {r.failure.hint for r in report.failed if r.failure and r.failure.hint}
        advice = f"{'; '.join(sorted(hints))}; then " if hints else "fix them, then "
        summary = report.failure_summary(with_errors=True)
        next_step = f"{advice}rerun `{rerun}` (workers already bound are left unchanged)"
        statuses = {r.failure.exit_status for r in report.failed if r.failure is not None}
        if statuses == {EXIT_USAGE}:
            return fail("bind", Failure(summary, next_step, None, EXIT_USAGE, "usage"))
        return fail("bind", Failure(summary, next_step, None, EXIT_API, "cloudflare_api"))
    record(
        "bind",
        "done" if report.changes else "unchanged",
        f"{report.count('created')} created, {report.count('updated')} updated, "
        f"{report.count('unchanged')} unchanged in {report.namespace}",
    )

    try:
        # The namespace exists now (the first step made sure of it).
        ready = plan.deploy.model_copy(update={"namespace_exists": True})
        deployed = execute_deploy(session, plan.bind.resolved, ready, log=log, probing=probing)
    except Interrupted:
        raise  # it put the deployment back and says so; the change log rides along
    except RouteConflictError as exc:
        hint = f"rerun `{rerun} --force` to take the routes over for the dispatcher"
        return fail("deploy", failed(exc, hint))
    except Code24Error as exc:
        return fail(
            "deploy", failed(exc, f"{exc.hint or 'fix the error above'}; then rerun `{rerun}`")
        )
    if not deployed.ok:
        error = deploy_failure(deployed)
        hint = error.hint or f"fix it, then rerun `{rerun}`"
        return fail("deploy", failed(error, hint), probe=deployed.probe)
    writes = [r for r in deployed.routes if r.applied]
    kv_created = deployed.kv is not None and deployed.kv.action == "created"
    status: StepStatus = "done" if (deployed.uploaded or writes or kv_created) else "unchanged"
    record(
        "deploy",
        status,
        f"dispatcher {deployed.dispatcher} {deployed.upload_words()}, "
        f"{len(writes)} route(s) written, "
        f"{sum(r.action == 'unchanged' for r in deployed.routes)} unchanged",
        probe=deployed.probe,
        unprobed=deployed.unprobed,
    )
    result.changes = list(log.changes)
    return result


def failure(result: ApplyResult) -> ApplyFailed:
    """The error a failed apply exits with, naming the step and what to do next.

    Exit 3 for the API or the network (and for workers that failed to bind, as ``bind``
    exits), 2 when the step failed on a usage or config error.
    """
    failed = next((s for s in result.steps if s.status == "failed"), None)
    where = f"at step {failed.step}" if failed is not None else "before writing anything"
    stopped = result.failure or Failure("the apply failed", exit_status=EXIT_API)
    error = ApplyFailed(
        f"apply stopped {where}: {stopped.message}",
        hint=stopped.hint,
        exit_code=stopped.exit_status,
    )
    error.changes = stopped.changes
    return error
