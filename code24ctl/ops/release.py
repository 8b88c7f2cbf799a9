"""The shared part of a release of the dispatcher: the report, the pre-flight checks, uploading
deploying a split, and the steps every release prints (and puts back when
interrupted). The releases themselves: :mod:`code24ctl.ops.rollout` (``deploy --gradual`` and
``--canary``), :mod:`code24ctl.ops.promote` and :mod:`code24ctl.ops.rollback`; the state every
command names, :mod:`code24ctl.ops.release_state`; the ``versions`` listing and a version named
by a prefix, :mod:`code24ctl.ops.versions`; the upload of a version,
:mod:`code24ctl.ops.release_upload`.

Every release starts from the deployment serving now and ends in a deployment whose
percentages total 100. A version is uploaded with the same modules and bindings as ``deploy``
(:func:`~code24ctl.ops.dispatcher_worker.dispatcher_code`); routes are ``deploy``'s business
and are not touched here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, Field

from code24ctl.cloudflare.versions import (
    DeploymentInfo,
    VersionInfo,
    create_deployment,
    current_deployment,
)
from code24ctl.config import ResolvedConfig
from code24ctl.errors import (
    CheckFailed,
    CloudflareAPIError,
    Code24Error,
    Interrupted,
    NetworkError,
    UsageError,
    interruption_status,
    interruption_word,
)
from code24ctl.ops.release_state import ReleaseState, read_release_state, release_state
from code24ctl.probe.report import ProbeReport

if TYPE_CHECKING:
    from code24ctl.cloudflare.session import CloudflareSession

Strategy = Literal["deploy", "gradual", "canary", "promote", "rollback"]
ProbeStage = Literal["override", "split", "after"]
#: Requests per route in a canary's probe after the split, unless told otherwise: enough that
#: a sample reaches both versions at 10% (1 - 0.9**10 is about 65% per route).
CANARY_REPEAT = 10


def state_after(report: ReleaseReport) -> ReleaseState:
    """The state a release left, from its ``before`` and ``after`` (no API call): the
    version that served 100% before is the stable one of a split."""
    history = [d for d in (report.after, report.before) if d is not None]
    if report.after is report.before:
        history = history[:1]
    return release_state(history)


class ProbeRun(BaseModel):
    """One probe of a release: through the override, after the split, or after a rollback."""

    stage: ProbeStage
    report: ProbeReport


class ReleaseSummary(BaseModel):
    """Counts of a release document."""

    probes: int = 0
    probes_failed: int = 0


class ReleaseReport(BaseModel):
    """What a release did (``deploy --gradual/--canary``, ``promote``, ``rollback`` --json)."""

    command: Literal["deploy", "promote", "rollback"]
    environment: str
    namespace: str
    dispatcher: str
    strategy: Strategy
    ok: bool
    # The version released: uploaded, promoted, or rolled back to.
    version: VersionInfo | None
    before: DeploymentInfo | None
    after: DeploymentInfo | None
    changed: bool
    # A release that failed after changing the deployment put ``before`` back ...
    restored: bool = False
    # ... or tried to, and could not (``error`` says what serves; exit 3).
    put_back_failed: bool = False
    # The release state it left (the same words as ``versions``, ``doctor``, ``plan``).
    state: ReleaseState | None = None
    error: str | None = None
    involved: list[VersionInfo] = Field(default_factory=list)
    probes: list[ProbeRun] = Field(default_factory=list)
    summary: ReleaseSummary = Field(default_factory=ReleaseSummary)
    notes: list[str] = Field(default_factory=list)

    def add_probe(self, stage: ProbeStage, report: ProbeReport) -> None:
        """Keep a probe's report and count it."""
        self.probes.append(ProbeRun(stage=stage, report=report))
        self.summary.probes += 1
        self.summary.probes_failed += 0 if report.ok else 1


class TargetPlan(BaseModel):
    """What ``promote`` or ``rollback`` will do: ``target`` to 100%, from ``before``."""

    environment: str
    namespace: str
    dispatcher: str
    before: DeploymentInfo
    state: ReleaseState
    target: VersionInfo


class RollbackPlan(TargetPlan):
    """What ``rollback`` will do: from ``before`` to ``target`` at 100%."""

    # Why this version: named, the stable one of a split, or the previous one at 100%.
    reason: str
    involved: list[VersionInfo]
    # The target served 100% in a deployment of the history: it goes straight to 100% and is
    # probed afterwards. Otherwise it is probed through the override before it takes traffic.
    proven: bool = True


# --------------------------------------------------------------------------------------------
# Pre-flight


def require_versions(resolved: ResolvedConfig) -> None:
    """Refuse a local environment: versions exist only on Cloudflare (exit 2)."""
    if resolved.environment.is_local:
        raise UsageError(
            f"environment {resolved.env_name!r} is local: it has no Worker versions or "
            "deployments (those exist only on Cloudflare; `code24ctl serve` runs the "
            "config as it is)",
            hint=f"choose one of: {', '.join(resolved.cloudflare_environments())}",
        )


def serving(session: CloudflareSession, resolved: ResolvedConfig) -> DeploymentInfo:
    """The dispatcher's deployment now; a usage error when it was never deployed."""
    found = current_deployment(session, resolved.dispatcher())
    if found is None or not found.versions:
        raise not_deployed(resolved)
    return found


def not_deployed(resolved: ResolvedConfig) -> UsageError:
    return UsageError(
        f"the dispatcher {resolved.dispatcher()} has no deployment yet: a release needs a "
        "version to start from",
        hint=f"run `code24ctl deploy --env {resolved.env_name}` first",
    )


def describe(deployment: DeploymentInfo) -> str:
    """``<id> 90%, <id> 10%``."""
    return ", ".join(f"{s.version_id} {s.percentage:g}%" for s in deployment.versions)


def rollout_in_progress(
    session: CloudflareSession, resolved: ResolvedConfig
) -> DeploymentInfo | None:
    """The serving deployment when it splits traffic between two versions, else None."""
    found = current_deployment(session, resolved.dispatcher())
    return found if found is not None and found.split else None


def rollout_error(
    resolved: ResolvedConfig,
    deployment: DeploymentInfo,
    what: str,
    session: CloudflareSession | None = None,
) -> UsageError:
    """The refusal to ``what`` over an unfinished gradual rollout (exit 2), naming the release
    state in the words every command uses (read through ``session`` when given)."""
    env = resolved.env_name
    words = read_release_state(session, resolved).words if session else describe(deployment)
    return UsageError(
        f"the dispatcher {resolved.dispatcher()} is in an unfinished gradual rollout "
        f"({words}); {what}",
        hint=f"finish it first with `code24ctl promote --env {env}` or "
        f"`code24ctl rollback --env {env}`",
    )


def refuse_over_rollout(
    session: CloudflareSession, resolved: ResolvedConfig, command: str, deployed: bool = True
) -> None:
    """Refuse (exit 2) a plain upload of the dispatcher over a split deployment: it would end
    the rollout at 100% of a third version (wrangler asks the same:
    ``confirm-latest-deployment-overwrite``)."""
    if not deployed:
        return
    split = rollout_in_progress(session, resolved)
    if split is not None:
        error = rollout_error(
            resolved, split, f"{command} would replace it with a new version", session
        )
        error.hint = f"{error.hint}, or rerun {command} with --ignore-rollout"
        raise error


def single_version(
    session: CloudflareSession, resolved: ResolvedConfig, deployment: DeploymentInfo
) -> str:
    if deployment.split:
        raise rollout_error(
            resolved, deployment, "a new release would start from two versions", session
        )
    return deployment.versions[0].version_id


def new_report(
    resolved: ResolvedConfig,
    command: Literal["deploy", "promote", "rollback"],
    strategy: Strategy,
    before: DeploymentInfo | None,
) -> ReleaseReport:
    return ReleaseReport(
        command=command,
        environment=resolved.env_name,
        namespace=resolved.namespace(),
        dispatcher=resolved.dispatcher(),
        strategy=strategy,
        ok=True,
        version=None,
        before=before,
        after=before,
        changed=False,
    )


def deploy_split(
    session: CloudflareSession,
    name: str,
    shares: list[tuple[str, float]],
    *,
    message: str | None = None,
    force: bool = False,
) -> DeploymentInfo:
    """:func:`create_deployment`; when its outcome is unknown (5xx, no answer), the deployment
    is read before anything is decided: one that is what was asked for counts as done."""
    try:
        return create_deployment(session, name, shares, message=message, force=force)
    except (CloudflareAPIError, NetworkError) as exc:
        if isinstance(exc, CloudflareAPIError) and exc.status is not None and exc.status < 500:
            raise
        try:
            now = current_deployment(session, name)
        except Code24Error:
            raise exc from None
        wanted = {(v, float(p)) for v, p in shares}
        if now is not None and {(s.version_id, s.percentage) for s in now.versions} == wanted:
            return now
        raise


def check_percent(percent: float) -> None:
    """A release percentage is more than 0 and at most 100."""
    if not 0 < percent <= 100:
        raise UsageError(f"the percentage must be more than 0 and at most 100, not {percent:g}")


def split_shares(new: str, old: str, percent: float) -> list[tuple[str, float]]:
    return [(new, 100.0)] if percent >= 100 else [(new, percent), (old, 100 - percent)]


# --------------------------------------------------------------------------------------------
# Steps and interrupts

Say = Callable[[str], None]


def quiet(_line: str) -> None:
    """The default ``say``: no step lines."""


class ReleaseSteps:
    """Where a release got: each step says one line as it starts (nothing is silent for
    seconds), and an interrupt names the step it came in."""

    def __init__(self, strategy: str, say: Say, *, uploads: bool = True) -> None:
        self.strategy = strategy
        self.say = say
        self.current = "before anything was written"
        # promote and rollback upload nothing: an interrupt says nothing about uploads.
        self.uploads = uploads
        self.upload_started = False

    def start(self, what: str) -> None:
        self.current = what
        self.say(f"{self.strategy}: {what}")


def same_deployment(a: DeploymentInfo, b: DeploymentInfo) -> bool:
    return {(s.version_id, s.percentage) for s in a.versions} == {
        (s.version_id, s.percentage) for s in b.versions
    }


Stopped = Callable[..., Code24Error]


def stopped_by(exc: BaseException, steps: ReleaseSteps) -> tuple[str, Stopped]:
    """What stopped a release midway, as the start of its message, and the error to raise: an
    :class:`Interrupted` (130, 143, 129) for a signal, a :class:`NetworkError` (3) for the
    network."""
    if isinstance(exc, NetworkError):
        network = exc

        def failed(message: str, hint: str | None = None) -> Code24Error:
            return NetworkError(message, hint=hint, unknown_outcome=network.unknown_outcome)

        return f"the network failed ({exc.message}) while {steps.current}", failed
    status = interruption_status(exc)

    def interrupted(message: str, hint: str | None = None) -> Code24Error:
        return Interrupted(message, hint=hint, exit_code=status)

    return f"{interruption_word(exc)} while {steps.current}", interrupted


def interrupted_error(
    session: CloudflareSession,
    report: ReleaseReport,
    before: DeploymentInfo,
    steps: ReleaseSteps,
    exc: BaseException,
) -> Code24Error:
    """After Ctrl-C, SIGTERM or a network failure mid-release: read what serves now, put
    ``before`` back if it changed, and say what was uploaded, what was deployed and what was
    put back (an :class:`Interrupted`, or a :class:`NetworkError` for the network: exit 3).

    A deployment whose answer the network lost may have been made, so it is read, never
    assumed; when the network cannot read it either, the error says the state is unknown."""
    env = report.environment
    fix = f"`code24ctl rollback --env {env} {back_to(before)} --yes`"
    stop_word = "failed" if isinstance(exc, NetworkError) else "interrupted"
    head, stopped = stopped_by(exc, steps)
    if steps.uploads and report.version is not None:
        head += f"; uploaded version {report.version.id} (it takes no traffic)"
    elif steps.uploads and steps.upload_started:
        head += "; the upload was under way (any version it made takes no traffic)"
    elif steps.uploads:
        head += "; nothing was uploaded"
    try:
        # What an interrupted write did is unknown: read before deciding anything.
        now = current_deployment(session, report.dispatcher)
    except (Code24Error, KeyboardInterrupt) as read_error:
        why = _why(read_error)
        return stopped(
            f"{head}; the deployment could not be read ({why}): it may not be as before "
            f"({describe(before)})",
            hint=f"check with `code24ctl versions --env {env}`; put it back with {fix}",
        )
    if now is None or same_deployment(now, before):
        return stopped(
            f"{head}; the deployment is unchanged ({describe(before)})",
        )
    deployed = describe(now)
    steps.say(f"{steps.strategy}: putting back {describe(before)}")
    try:
        deploy_split(
            session,
            report.dispatcher,
            [(s.version_id, s.percentage) for s in before.versions],
            message=f"code24ctl {steps.strategy} {stop_word}: put back",
        )
    except (Code24Error, KeyboardInterrupt) as put_error:
        why = _why(put_error)
        return stopped(
            f"{head}; deployed {deployed}; putting back {describe(before)} failed ({why}): "
            f"the deployment is still {deployed}",
            hint=f"put it back with {fix}",
        )
    return stopped(f"{head}; deployed {deployed}; put back {describe(before)}")


def _why(error: BaseException) -> str:
    """Why a read or put-back after a stop failed: the error's message, or a second Ctrl-C."""
    return error.message if isinstance(error, Code24Error) else "interrupted again"


def back_to(before: DeploymentInfo) -> str:
    """The version a deployment that could not be put back returns to at 100%: the one that
    served 100%, or the stable one of a split (the larger share)."""
    stable = release_state([before]).stable
    return stable.version_id if stable is not None else before.versions[0].version_id


def interrupted_keeping(
    session: CloudflareSession,
    report: ReleaseReport,
    before: DeploymentInfo,
    steps: ReleaseSteps,
    exc: BaseException,
    target: str,
) -> Code24Error:
    """A rollback to a proven version, interrupted once its deployment may have been sent: it
    is not undone (what it started from is what the operator is leaving). Read what serves
    and say exactly that, and the one command that finishes the job."""
    env = report.environment
    head, stopped = stopped_by(exc, steps)
    finish = f"finish it with `code24ctl rollback --env {env} {target} --yes`"
    try:
        now = current_deployment(session, report.dispatcher)
    except (Code24Error, KeyboardInterrupt) as read_error:
        why = _why(read_error)
        return stopped(
            f"{head}; the deployment could not be read ({why}): it is either as before "
            f"({describe(before)}) or {target} 100%",
            hint=f"check with `code24ctl versions --env {env}`; {finish}",
        )
    if now is not None and now.share_of(target) == 100:
        return stopped(
            f"{head}; the rollback is in place ({describe(now)}), but it was not probed afterwards",
            hint=f"probe it with `code24ctl probe --env {env}`",
        )
    if now is None or same_deployment(now, before):
        return stopped(f"{head}; the deployment is unchanged ({describe(before)})", hint=finish)
    return stopped(f"{head}; the deployment is now {describe(now)}", hint=finish)


def failure(report: ReleaseReport) -> Code24Error:
    """The error a failed release exits with: 1 (a probe failed), 3 when the deployment could
    not be put back (the API failed)."""
    return put_back_error(
        report.error or "the release failed",
        put_back_failed=report.put_back_failed,
        before=report.before,
        environment=report.environment,
    )


def put_back_error(
    message: str, *, put_back_failed: bool, before: DeploymentInfo | None, environment: str
) -> Code24Error:
    """A failed probed upload: 1 when the deployment is back, 3 (with the rollback that puts
    it back) when putting it back failed too."""
    if put_back_failed and before is not None:
        back = back_to(before)
        return CloudflareAPIError(
            message,
            hint=f"put it back with `code24ctl rollback --env {environment} {back} --yes`",
        )
    return CheckFailed(message)
