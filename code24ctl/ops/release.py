"""Release the dispatcher version by version: gradual, canary, promote, rollback.

Every release starts from the deployment serving now and ends in a deployment whose
percentages total 100. A version is uploaded with the same modules and bindings as ``deploy``
(:func:`~code24ctl.ops.deploy.dispatcher_code`); routes are ``deploy``'s business and are not
touched here.

A canary puts the new version into the deployment at 0% first, because the
``Cloudflare-Workers-Version-Overrides`` header is only honoured for a version that is in the
current deployment (developers.cloudflare.com/workers/configuration/versions-and-deployments/
gradual-deployments/#version-overrides). It probes the version through that header, then
splits the traffic and probes again; a failure at any point puts the deployment it started
from back.

The release state every command names is :mod:`code24ctl.ops.release_state`; the ``versions``
listing, :mod:`code24ctl.ops.versions`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, Field

from code24ctl.cloudflare.versions import (
    SECRETS_CHANGED,
    SECRETS_CHANGED_MARKER,
    DeploymentInfo,
    VersionInfo,
    create_deployment,
    current_deployment,
    get_version,
    hyphenated,
    list_deployments,
    list_versions,
    override_header,
    sync_script_settings,
    upload_version,
    version_metadata,
)
from code24ctl.config import ResolvedConfig
from code24ctl.constants import DEFAULT_VERSION_WAIT_S
from code24ctl.errors import (
    Aborted,
    CheckFailed,
    CloudflareAPIError,
    Code24Error,
    Interrupted,
    NetworkError,
    UsageError,
    interruption_status,
    interruption_word,
)
from code24ctl.ops.deploy import dispatcher_code, find_kv_namespace
from code24ctl.ops.release_state import ReleaseState, read_release_state, release_state
from code24ctl.probe.plan import ProbeOptions, plan_probe
from code24ctl.probe.report import ProbeReport
from code24ctl.probe.runner import VERSION_NOT_APPLIED, run_plan
from code24ctl.probe.send import WaitCallback, wait_lines

if TYPE_CHECKING:
    from code24ctl.cloudflare.session import CloudflareSession
    from code24ctl.cloudflare.worker_code import WorkerCode

Strategy = Literal["gradual", "canary", "promote", "rollback"]
ProbeStage = Literal["override", "split", "after"]
#: Requests per route in a canary's probe after the split, unless told otherwise: enough that
#: a sample reaches both versions at 10% (1 - 0.9**10 is about 65% per route).
CANARY_REPEAT = 10
WORKERS_SDK_10712 = "https://github.com/cloudflare/workers-sdk/issues/10712"


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


class RollbackPlan(BaseModel):
    """What ``rollback`` will do: from ``before`` to ``target`` at 100%."""

    environment: str
    namespace: str
    dispatcher: str
    before: DeploymentInfo
    state: ReleaseState
    target: VersionInfo
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
        raise _not_deployed(resolved)
    return found


def _not_deployed(resolved: ResolvedConfig) -> UsageError:
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


def _single(
    session: CloudflareSession, resolved: ResolvedConfig, deployment: DeploymentInfo
) -> str:
    if deployment.split:
        raise rollout_error(
            resolved, deployment, "a new release would start from two versions", session
        )
    return deployment.versions[0].version_id


def release_code(session: CloudflareSession, resolved: ResolvedConfig) -> WorkerCode:
    """What a version upload carries: deploy's modules and bindings (the KV must exist)."""
    title = resolved.environment.kv_namespace
    kv_id = find_kv_namespace(session, title) if title else None
    if title and kv_id is None:
        raise UsageError(
            f"KV namespace {title} does not exist, so the dispatcher cannot be versioned yet",
            hint=f"run `code24ctl deploy --env {resolved.env_name}` first",
        )
    return dispatcher_code(resolved, kv_id)


def _upload(
    session: CloudflareSession,
    resolved: ResolvedConfig,
    code: WorkerCode,
    message: str | None,
) -> VersionInfo:
    dispatcher = resolved.dispatcher()
    _versioned, script_settings = version_metadata(code.metadata())
    try:
        version = upload_version(session, dispatcher, code, message=message)
    except CloudflareAPIError as exc:
        raise CloudflareAPIError(
            f"the Versions API refused the upload of {dispatcher} ({exc.message}); "
            "nothing was changed",
            code=exc.code,
            status=exc.status,
            hint=f"plain `code24ctl deploy --env {resolved.env_name}` uploads and deploys the "
            "dispatcher in one step (without a gradual rollout); Workers for Platforms users "
            f"have met this for a dispatch-namespace binding ({WORKERS_SDK_10712})",
        ) from None
    # Tags and the other non-versioned settings belong to the script, not to the version.
    sync_script_settings(session, dispatcher, script_settings)
    return version


def _report(
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


def _deploy(
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


def _split(new: str, old: str, percent: float) -> list[tuple[str, float]]:
    return [(new, 100.0)] if percent >= 100 else [(new, percent), (old, 100 - percent)]


# --------------------------------------------------------------------------------------------
# Steps and interrupts

Say = Callable[[str], None]


def _quiet(_line: str) -> None:
    """The default ``say``: no step lines."""


class _Steps:
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


def _same(a: DeploymentInfo, b: DeploymentInfo) -> bool:
    return {(s.version_id, s.percentage) for s in a.versions} == {
        (s.version_id, s.percentage) for s in b.versions
    }


def _interrupted(
    session: CloudflareSession,
    report: ReleaseReport,
    before: DeploymentInfo,
    steps: _Steps,
    exc: BaseException,
) -> Interrupted:
    """After Ctrl-C or SIGTERM: read what serves now, put ``before`` back if it changed, and
    say what was uploaded, what was deployed and what was put back."""
    status = interruption_status(exc)
    env = report.environment
    fix = f"`code24ctl rollback --env {env} {_back_to(before)} --yes`"
    head = f"{interruption_word(exc)} while {steps.current}"
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
        why = read_error.message if isinstance(read_error, Code24Error) else "interrupted again"
        return Interrupted(
            f"{head}; the deployment could not be read ({why}): it may not be as before "
            f"({describe(before)})",
            hint=f"check with `code24ctl versions --env {env}`; put it back with {fix}",
            exit_code=status,
        )
    if now is None or _same(now, before):
        return Interrupted(
            f"{head}; the deployment is unchanged ({describe(before)})", exit_code=status
        )
    deployed = describe(now)
    steps.say(f"{steps.strategy}: putting back {describe(before)}")
    try:
        _deploy(
            session,
            report.dispatcher,
            [(s.version_id, s.percentage) for s in before.versions],
            message=f"code24ctl {steps.strategy} interrupted: put back",
        )
    except (Code24Error, KeyboardInterrupt) as put_error:
        why = put_error.message if isinstance(put_error, Code24Error) else "interrupted again"
        return Interrupted(
            f"{head}; deployed {deployed}; putting back {describe(before)} failed ({why}): "
            f"the deployment is still {deployed}",
            hint=f"put it back with {fix}",
            exit_code=status,
        )
    return Interrupted(
        f"{head}; deployed {deployed}; put back {describe(before)}", exit_code=status
    )


def _back_to(before: DeploymentInfo) -> str:
    """The version a deployment that could not be put back returns to at 100%: the one that
    served 100%, or the stable one of a split (the larger share)."""
    stable = release_state([before]).stable
    return stable.version_id if stable is not None else before.versions[0].version_id


def _interrupted_keeping(
    session: CloudflareSession,
    report: ReleaseReport,
    before: DeploymentInfo,
    steps: _Steps,
    exc: BaseException,
    target: str,
) -> Interrupted:
    """A rollback to a proven version, interrupted once its deployment may have been sent: it
    is not undone (what it started from is what the operator is leaving). Read what serves
    and say exactly that, and the one command that finishes the job."""
    status = interruption_status(exc)
    env = report.environment
    head = f"{interruption_word(exc)} while {steps.current}"
    finish = f"finish it with `code24ctl rollback --env {env} {target} --yes`"
    try:
        now = current_deployment(session, report.dispatcher)
    except (Code24Error, KeyboardInterrupt) as read_error:
        why = read_error.message if isinstance(read_error, Code24Error) else "interrupted again"
        return Interrupted(
            f"{head}; the deployment could not be read ({why}): it is either as before "
            f"({describe(before)}) or {target} 100%",
            hint=f"check with `code24ctl versions --env {env}`; {finish}",
            exit_code=status,
        )
    if now is not None and now.share_of(target) == 100:
        return Interrupted(
            f"{head}; the rollback is in place ({describe(now)}), but it was not probed afterwards",
            hint=f"probe it with `code24ctl probe --env {env}`",
            exit_code=status,
        )
    if now is None or _same(now, before):
        return Interrupted(
            f"{head}; the deployment is unchanged ({describe(before)})",
            hint=finish,
            exit_code=status,
        )
    return Interrupted(
        f"{head}; the deployment is now {describe(now)}", hint=finish, exit_code=status
    )


# --------------------------------------------------------------------------------------------
# deploy --gradual


def gradual(
    session: CloudflareSession,
    resolved: ResolvedConfig,
    percent: float,
    *,
    message: str | None = None,
    say: Say = _quiet,
) -> ReleaseReport:
    """Upload a version and deploy it at ``percent``, the serving version at the rest.

    Ctrl-C or SIGTERM at any step puts the deployment it started from back
    (:class:`~code24ctl.errors.Interrupted`, saying what was done)."""
    require_versions(resolved)
    check_percent(percent)
    before = serving(session, resolved)
    old = _single(session, resolved, before)
    code = release_code(session, resolved)
    report = _report(resolved, "deploy", "gradual", before)
    steps = _Steps("gradual", say)
    try:
        steps.start(f"uploading a new version of {report.dispatcher}")
        steps.upload_started = True
        report.version = _upload(session, resolved, code, message)
        new = report.version.id
        steps.start(f"deploying version {new} at {percent:g}%, {old} at {100 - percent:g}%")
        with _unchanged_on_failure(before, report.version):
            report.after = _deploy(
                session,
                report.dispatcher,
                _split(new, old, percent),
                message=message or f"code24ctl deploy --gradual {percent:g}",
            )
        report.changed = True
    except KeyboardInterrupt as exc:
        raise _interrupted(session, report, before, steps, exc) from None
    report.state = state_after(report)
    return report


@contextmanager
def _unchanged_on_failure(
    before: DeploymentInfo, version: VersionInfo, *, uploaded: bool = True
) -> Iterator[None]:
    """A failed deployment create: say that what serves is unchanged."""
    try:
        yield
    except CloudflareAPIError as exc:
        raise CloudflareAPIError(
            f"{exc.message}; the deployment is unchanged ({describe(before)}); version "
            f"{version.id} {'was uploaded and ' if uploaded else ''}takes no traffic",
            code=exc.code,
            status=exc.status,
            hint=exc.hint,
        ) from None


# --------------------------------------------------------------------------------------------
# deploy --canary


ProbeRunner = Callable[[ResolvedConfig, ProbeOptions, WaitCallback | None], ProbeReport]


def _run_probe(
    resolved: ResolvedConfig, options: ProbeOptions, on_wait: WaitCallback | None = None
) -> ProbeReport:
    return run_plan(plan_probe(resolved, options), on_wait=on_wait)


def _through_override(
    options: ProbeOptions, dispatcher: str, version_id: str, wait_s: float
) -> ProbeOptions:
    return options.model_copy(
        update={
            "headers": (override_header(dispatcher, version_id),),
            "version": version_id,
            "version_wait_s": wait_s,
        }
    )


def _override_failure(report: ProbeReport, version_id: str) -> str:
    waited = report.version_wait
    if waited is not None and not waited.applied:
        return (
            f"the probe through the override ({VERSION_NOT_APPLIED}: version {version_id} never "
            f"answered within {waited.limit_s:g} s)"
        )
    if report.summary.version_not_applied:
        return f"the probe through the override ({VERSION_NOT_APPLIED})"
    return "the probe through the override"


Deploy = Callable[[list[tuple[str, float]], str], DeploymentInfo]


def _stage_and_probe(
    session: CloudflareSession,
    resolved: ResolvedConfig,
    report: ReleaseReport,
    before: DeploymentInfo,
    version: VersionInfo,
    steps: _Steps,
    *,
    base: ProbeOptions,
    probe: ProbeRunner,
    wait_s: float,
    message: str,
    deploy: Deploy | None = None,
) -> ProbeReport:
    """The canary's first steps, shared by ``promote`` and ``rollback`` of a version that has
    not proven itself: when ``version`` is not in ``before``, deploy it at 0% beside the
    version serving 100% (the stable one of a split: a deployment holds two versions at most),
    because the override reaches only a version in the deployment; then probe it through the
    override, waiting up to ``wait_s`` for the override to apply (``version_not_applied``
    when it never does). The caller puts ``before`` back when the probe fails."""
    dispatcher = report.dispatcher
    if before.share_of(version.id) is None:
        beside = _back_to(before)
        steps.start(
            f"deploying version {version.id} at 0% beside {beside} (100%), so that the version "
            "override reaches it"
        )
        with _unchanged_on_failure(before, version, uploaded=steps.uploads):
            shares = [(beside, 100.0), (version.id, 0.0)]
            if deploy is None:
                report.after = _deploy(session, dispatcher, shares, message=message)
            else:
                report.after = deploy(shares, message)
        report.changed = True
    steps.start(f"probing version {version.id} through the version override")
    first = probe(
        resolved,
        _through_override(base, dispatcher, version.id, wait_s),
        wait_lines(steps.say, version.id, wait_s),
    )
    report.add_probe("override", first)
    return first


def canary(
    session: CloudflareSession,
    resolved: ResolvedConfig,
    percent: float,
    *,
    message: str | None = None,
    repeat: int = CANARY_REPEAT,
    probe_options: ProbeOptions | None = None,
    probe: ProbeRunner = _run_probe,
    wait_s: float = DEFAULT_VERSION_WAIT_S,
    say: Say = _quiet,
) -> ReleaseReport:
    """Upload, probe through the override at 0%, split at ``percent``, probe again.

    The probe through the override first waits (at most ``wait_s``) for the new version to
    answer, and fails any answer from another version (``version_not_applied``): an override
    Cloudflare has not applied yet is routed by the percentages, to the old version. The probe
    after the split sends each request ``repeat`` times, so that samples reach both versions.

    Never raises for a failed probe: ``ok`` is False, the deployment it started from is back
    (``restored``) and ``error`` says what failed (:func:`failure` makes the exit-1 error).
    Ctrl-C or SIGTERM at any step puts the deployment back too, and raises
    :class:`~code24ctl.errors.Interrupted` saying what was uploaded, deployed and put back.
    """
    require_versions(resolved)
    check_percent(percent)
    base = probe_options or ProbeOptions()
    dispatcher = resolved.dispatcher()
    # Probe settings are checked before anything is written (no base_url, no samples: exit 2).
    plan_probe(resolved, base)
    before = serving(session, resolved)
    old = _single(session, resolved, before)
    code = release_code(session, resolved)
    report = _report(resolved, "deploy", "canary", before)
    note = message or f"code24ctl deploy --canary {percent:g}"
    steps = _Steps("canary", say)
    try:
        steps.start(f"uploading a new version of {dispatcher}")
        steps.upload_started = True
        new = _upload(session, resolved, code, message)
        report.version = new
        first = _stage_and_probe(
            session,
            resolved,
            report,
            before,
            new,
            steps,
            base=base,
            probe=probe,
            wait_s=wait_s,
            message=f"{note} (probe)",
        )
        if not first.ok:
            return _restore(session, report, before, _override_failure(first, new.id), steps)

        steps.start(f"deploying version {new.id} at {percent:g}%, {old} at {100 - percent:g}%")
        try:
            report.after = _deploy(session, dispatcher, _split(new.id, old, percent), message=note)
        except CloudflareAPIError as exc:
            what = f"deploying it at {percent:g}% ({exc.message})"
            return _restore(session, report, before, what, steps)
        steps.start(f"probing after the split ({repeat} requests per route)")
        second = probe(resolved, base.model_copy(update={"repeat": repeat}), None)
        report.add_probe("split", second)
        if not second.ok:
            return _restore(session, report, before, f"the probe at {percent:g}%", steps)
    except KeyboardInterrupt as exc:
        raise _interrupted(session, report, before, steps, exc) from None
    report.state = state_after(report)
    return report


def _restore(
    session: CloudflareSession,
    report: ReleaseReport,
    before: DeploymentInfo,
    what: str,
    steps: _Steps,
) -> ReleaseReport:
    report.ok = False
    shares = [(s.version_id, s.percentage) for s in before.versions]
    steps.start(f"{what} failed: putting back {describe(before)}")
    try:
        report.after = _deploy(
            session, report.dispatcher, shares, message=f"code24ctl {steps.strategy} failed"
        )
    except Code24Error as exc:
        report.put_back_failed = True
        report.error = (
            f"{what} failed, and putting the deployment back failed too: {exc.message}; the "
            f"deployment is now {describe(report.after or before)}"
        )
        report.state = state_after(report)
        return report
    report.restored = True
    report.error = (
        f"{what} failed; the deployment is back as it was ({describe(before)}); "
        f"version {report.version.id if report.version else '?'} takes no traffic"
    )
    report.state = state_after(report)
    return report


def failure(report: ReleaseReport) -> Code24Error:
    """The error a failed release exits with: 1 (a probe failed), 3 when the deployment could
    not be put back (the API failed)."""
    message = report.error or "the release failed"
    if report.put_back_failed and report.before is not None:
        back = _back_to(report.before)
        return CloudflareAPIError(
            message,
            hint=f"put it back with `code24ctl rollback --env {report.environment} {back} --yes`",
        )
    return CheckFailed(message)


# --------------------------------------------------------------------------------------------
# Naming a version


#: How many of the newest versions a version id prefix is looked up among.
RESOLVE_LIMIT = 100
_FULL_ID = re.compile(
    r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$"
)


def resolve_version(session: CloudflareSession, resolved: ResolvedConfig, text: str) -> VersionInfo:
    """The version ``text`` names: its id, or a prefix of exactly one recent version's id.

    An unknown or ambiguous id is a usage error (exit 2) that lists the recent versions.
    """
    dispatcher = resolved.dispatcher()
    wanted = text.strip().lower()
    recent = list_versions(session, dispatcher, RESOLVE_LIMIT) if wanted else []
    matches = [v for v in recent if v.id.lower().startswith(wanted)] if wanted else []
    exact = [v for v in matches if v.id.lower() == wanted]
    if exact:
        return exact[0]
    if len(matches) == 1:
        return matches[0]
    listing = ", ".join(
        f"{v.id}" + (f" #{v.number}" if v.number is not None else "") for v in recent[:5]
    )
    versions_cmd = f"`code24ctl versions --env {resolved.env_name}`"
    if len(matches) > 1:
        raise UsageError(
            f"version id {text!r} is ambiguous: {len(matches)} versions of {dispatcher} start "
            f"with it ({', '.join(v.id for v in matches[:5])})",
            hint="give more of the id",
        )
    if _FULL_ID.match(wanted):
        try:
            return get_version(session, dispatcher, hyphenated(wanted.replace("-", "")))
        except CloudflareAPIError as exc:
            if exc.status != 404:
                raise
    raise UsageError(
        f"no version of {dispatcher} has an id starting with {text!r}",
        hint=f"recent versions: {listing or 'none'} ({versions_cmd} lists them)",
    )


# --------------------------------------------------------------------------------------------
# promote


class PromotePlan(BaseModel):
    """What ``promote`` will do: ``target`` to 100%, from ``before``."""

    environment: str
    namespace: str
    dispatcher: str
    before: DeploymentInfo
    state: ReleaseState
    target: VersionInfo
    # The target is in the serving deployment, so the override reaches it: probed before
    # anything is written. Otherwise it goes in at 0% first (as a canary's version does).
    in_deployment: bool


def plan_promote(
    session: CloudflareSession, resolved: ResolvedConfig, version_id: str | None = None
) -> PromotePlan:
    """The candidate of the split (or ``version_id``); with no split and no version named,
    there is nothing to promote (exit 2, nothing is written)."""
    require_versions(resolved)
    history = list_deployments(session, resolved.dispatcher())
    if not history or not history[0].versions:
        raise _not_deployed(resolved)
    state = release_state(history)
    before = history[0]
    if version_id is None:
        if state.candidate is None:
            raise UsageError(
                f"nothing to promote: the dispatcher {resolved.dispatcher()} is not split "
                f"({state.words})",
                hint=f"`code24ctl deploy --env {resolved.env_name} --canary PERCENT` starts a "
                f"release; `code24ctl promote --env {resolved.env_name} VERSION_ID` takes a "
                "named version to 100%",
            )
        target = get_version(session, resolved.dispatcher(), state.candidate.version_id)
    else:
        target = resolve_version(session, resolved, version_id)
    return PromotePlan(
        environment=resolved.env_name,
        namespace=resolved.namespace(),
        dispatcher=resolved.dispatcher(),
        before=before,
        state=state,
        target=target,
        in_deployment=before.share_of(target.id) is not None,
    )


def require_probe(resolved: ResolvedConfig, options: ProbeOptions, command: str) -> None:
    """Refuse (exit 2) to release a version when the environment has nothing to probe."""
    try:
        plan_probe(resolved, options)
    except UsageError as exc:
        raise UsageError(
            f"{command} probes the version before it takes traffic, and cannot here: {exc.message}",
            # Release commands take the config's base_url only (no --base-url option).
            hint=(exc.hint or "").replace(" or pass --base-url URL", "") or None,
        ) from None


def probe_candidate(
    resolved: ResolvedConfig,
    plan: PromotePlan,
    *,
    probe_options: ProbeOptions | None = None,
    probe: ProbeRunner = _run_probe,
    wait_s: float = DEFAULT_VERSION_WAIT_S,
    say: Say = _quiet,
) -> ProbeReport | None:
    """Probe the promotion's target through the override, before anything is written (None
    when it already serves 100%, or when it is not in the deployment: then
    :func:`run_promote` puts it in at 0% and probes it). An environment with nothing to probe
    stops here, before the question (exit 2): no version goes to 100% unprobed."""
    if plan.before.share_of(plan.target.id) == 100:
        return None
    require_probe(resolved, probe_options or ProbeOptions(), "promote")
    if not plan.in_deployment:
        return None
    options = _through_override(
        probe_options or ProbeOptions(), plan.dispatcher, plan.target.id, wait_s
    )
    say(f"promote: probing version {plan.target.id} through the version override")
    return probe(resolved, options, wait_lines(say, plan.target.id, wait_s))


def run_promote(
    session: CloudflareSession,
    resolved: ResolvedConfig,
    plan: PromotePlan,
    probed: ProbeReport | None,
    *,
    probe_options: ProbeOptions | None = None,
    probe: ProbeRunner = _run_probe,
    wait_s: float = DEFAULT_VERSION_WAIT_S,
    say: Say = _quiet,
) -> ReleaseReport:
    """Deploy the plan's target at 100% unless ``probed`` failed (then nothing is written).

    A target outside the deployment has not been probed yet (the override cannot reach it):
    it goes in at 0% and is probed through the override first, as a canary's version is; a
    failed probe puts the deployment back (``ok`` False, ``restored``). Ctrl-C or SIGTERM
    once anything may have been written puts the deployment back too
    (:class:`~code24ctl.errors.Interrupted`)."""
    before = plan.before
    report = _report(resolved, "promote", "promote", before)
    report.version = plan.target
    target = plan.target.id
    if probed is not None:
        report.add_probe("override", probed)
        if not probed.ok:
            report.ok = False
            report.error = (
                f"{_override_failure(probed, target)} failed; nothing was changed "
                f"({describe(before)})"
            )
            report.state = plan.state
            return report
    if before.share_of(target) == 100:
        report.notes.append(f"version {target} already serves 100%: nothing to do")
        report.state = plan.state
        return report
    steps = _Steps("promote", say, uploads=False)
    try:
        if not plan.in_deployment:
            first = _stage_and_probe(
                session,
                resolved,
                report,
                before,
                plan.target,
                steps,
                base=probe_options or ProbeOptions(),
                probe=probe,
                wait_s=wait_s,
                message="code24ctl promote (probe)",
            )
            if not first.ok:
                return _restore(session, report, before, _override_failure(first, target), steps)
        steps.start(f"deploying version {target} at 100%")
        try:
            report.after = _deploy(
                session, report.dispatcher, [(target, 100.0)], message="code24ctl promote"
            )
        except CloudflareAPIError as exc:
            if not report.changed:
                raise
            return _restore(session, report, before, f"deploying it at 100% ({exc.message})", steps)
        report.changed = True
    except KeyboardInterrupt as exc:
        raise _interrupted(session, report, before, steps, exc) from None
    report.state = state_after(report)
    return report


# --------------------------------------------------------------------------------------------
# rollback


def plan_rollback(
    session: CloudflareSession,
    resolved: ResolvedConfig,
    version_id: str | None = None,
) -> RollbackPlan:
    """Which version a rollback returns to: ``version_id`` (a unique prefix is enough); the
    stable version during a split; else the previous version that served 100% (wrangler's
    rule: the newest earlier deployment with a version at 100%, other than the one now)."""
    require_versions(resolved)
    dispatcher = resolved.dispatcher()
    history = list_deployments(session, dispatcher)
    if not history or not history[0].versions:
        raise _not_deployed(resolved)
    before = history[0]
    state = release_state(history)
    if version_id is not None:
        target = resolve_version(session, resolved, version_id)
        reason = "the version named"
    elif state.stable is not None and state.candidate is not None:
        target = get_version(session, dispatcher, state.stable.version_id)
        reason = "the stable version of the split"
    else:
        now = {s.version_id for s in before.versions if s.percentage == 100}
        found = None
        for earlier in history[1:]:
            stable = [s.version_id for s in earlier.versions if s.percentage == 100]
            if stable and stable[0] not in now:
                found = stable[0]
                break
        if found is None:
            raise UsageError(
                f"no earlier version of {dispatcher} served 100% of the traffic",
                hint=f"name one: `code24ctl rollback --env {resolved.env_name} VERSION_ID` "
                f"(`code24ctl versions --env {resolved.env_name}` lists them)",
            )
        target = get_version(session, dispatcher, found)
        reason = "the previous version that served 100%"
    involved = [get_version(session, dispatcher, s.version_id) for s in before.versions]
    proven = any(
        s.version_id == target.id and s.percentage == 100 for d in history for s in d.versions
    )
    if not proven:
        # Before the question and before anything is written.
        require_probe(resolved, ProbeOptions(), "rollback")
    return RollbackPlan(
        environment=resolved.env_name,
        namespace=resolved.namespace(),
        dispatcher=dispatcher,
        before=before,
        state=state,
        target=target,
        reason=reason,
        involved=[v for v in involved if v.id != target.id] + [target],
        proven=proven,
    )


def changed_secrets(exc: CloudflareAPIError) -> list[str] | None:
    """The secrets named by the API's "secrets have changed" refusal (None: another error)."""
    if exc.code != SECRETS_CHANGED:
        return None
    text = exc.message
    at = text.find(SECRETS_CHANGED_MARKER)
    if at < 0:
        return []
    tail = text[at + len(SECRETS_CHANGED_MARKER) :].split("(HTTP")[0]
    return [name.strip(" .;") for name in tail.split(",") if name.strip(" .;")]


def run_rollback(
    session: CloudflareSession,
    resolved: ResolvedConfig,
    plan: RollbackPlan,
    *,
    probe_options: ProbeOptions | None = None,
    probe: ProbeRunner = _run_probe,
    confirm_force: Callable[[list[str]], bool] | None = None,
    wait_s: float = DEFAULT_VERSION_WAIT_S,
    say: Say = _quiet,
) -> ReleaseReport:
    """Deploy the plan's target at 100%, then probe (a failing probe leaves it deployed).

    A target that never served 100% (``plan.proven`` False) has not proven itself: it is
    probed through the override first, put into the deployment at 0% when it is not there,
    as a canary's version is; a failed probe puts the deployment back (``restored``).

    When the API refuses because secrets changed since the target was deployed, ask
    ``confirm_force(secret names)``; once it says yes, retry with ``force`` (as wrangler's
    rollback does); otherwise :class:`~code24ctl.errors.Aborted`, nothing changed.

    Ctrl-C or SIGTERM: while an unproven target is being probed, the deployment is put back;
    once the deployment of a proven target may have been sent, it is not undone, and the
    :class:`~code24ctl.errors.Interrupted` says what serves and the command that finishes."""
    before = plan.before
    target = plan.target.id
    report = _report(resolved, "rollback", "rollback", before)
    report.version = plan.target
    report.involved = plan.involved
    forced: list[str] = []

    def deploy(shares: list[tuple[str, float]], message: str) -> DeploymentInfo:
        try:
            return _deploy(session, plan.dispatcher, shares, message=message, force=bool(forced))
        except CloudflareAPIError as exc:
            secrets = changed_secrets(exc)
            if secrets is None or forced:
                raise
            if confirm_force is None or not confirm_force(secrets):
                raise Aborted(
                    f"the API refused the rollback to {target}: secrets changed since "
                    f"it was deployed ({', '.join(secrets) or 'not named'}); the deployment "
                    f"is unchanged ({describe(report.after or before)})"
                ) from None
            forced.append(", ".join(secrets) or "not named")
            steps.say("rollback: deploying again, forced across the changed secrets")
            return _deploy(session, plan.dispatcher, shares, message=message, force=True)

    steps = _Steps("rollback", say, uploads=False)
    if before.share_of(target) == 100 and not before.split:
        report.notes.append(f"version {target} already serves 100%: nothing to do")
    elif not plan.proven:
        try:
            first = _stage_and_probe(
                session,
                resolved,
                report,
                before,
                plan.target,
                steps,
                base=probe_options or ProbeOptions(),
                probe=probe,
                wait_s=wait_s,
                message="code24ctl rollback (probe)",
                deploy=deploy,
            )
            if not first.ok:
                return _restore(session, report, before, _override_failure(first, target), steps)
            steps.start(f"deploying version {target} at 100%")
            try:
                report.after = deploy([(target, 100.0)], "code24ctl rollback")
            except CloudflareAPIError as exc:
                if not report.changed:
                    raise
                what = f"deploying it at 100% ({exc.message})"
                return _restore(session, report, before, what, steps)
            report.changed = True
        except KeyboardInterrupt as exc:
            raise _interrupted(session, report, before, steps, exc) from None
        _forced_note(report, forced, target)
        report.state = state_after(report)
        return report
    else:
        try:
            steps.start(f"deploying version {target} at 100%")
            report.after = deploy([(target, 100.0)], "code24ctl rollback")
        except KeyboardInterrupt as exc:
            raise _interrupted_keeping(session, report, before, steps, exc, target) from None
        report.changed = True
    _forced_note(report, forced, target)
    report.state = state_after(report)
    options = probe_options or ProbeOptions()
    try:
        plan_probe(resolved, options)
    except UsageError as exc:
        report.notes.append(f"not probed: {exc.message}")
        return report
    try:
        steps.start("probing")
        after = probe(resolved, options, None)
    except KeyboardInterrupt as exc:
        raise _interrupted_keeping(session, report, before, steps, exc, target) from None
    report.add_probe("after", after)
    if not after.ok:
        report.ok = False
        report.error = f"the probe after the rollback failed; version {target} stays at 100%"
    return report


def _forced_note(report: ReleaseReport, forced: list[str], target: str) -> None:
    if forced:
        report.notes.append(
            f"forced across changed secrets ({forced[0]}): version {target} now runs with the "
            "secrets as they are"
        )
