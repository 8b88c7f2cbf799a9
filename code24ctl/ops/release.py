"""Release the dispatcher version by version: gradual, canary, promote, rollback, and the list.

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
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, Field

from code24ctl.cloudflare.versions import (
    DeploymentInfo,
    VersionInfo,
    config_hash,
    create_deployment,
    current_deployment,
    get_version,
    list_deployments,
    list_versions,
    override_header,
    sync_script_settings,
    upload_version,
    version_metadata,
)
from code24ctl.config import ResolvedConfig
from code24ctl.errors import CheckFailed, CloudflareAPIError, Code24Error, UsageError
from code24ctl.ops.deploy import dispatcher_code, find_kv_namespace
from code24ctl.probe.runner import ProbeOptions, ProbeReport, plan_probe, run_plan

if TYPE_CHECKING:
    from code24ctl.cloudflare.session import CloudflareSession
    from code24ctl.cloudflare.worker_code import WorkerCode

Strategy = Literal["gradual", "canary", "promote", "rollback"]
ProbeStage = Literal["override", "split", "after"]
#: Requests per route in a canary's probe after the split, unless told otherwise: enough that
#: a sample reaches both versions at 10% (1 - 0.9**10 is about 65% per route).
CANARY_REPEAT = 10
DEFAULT_VERSIONS_LIMIT = 10
WORKERS_SDK_10712 = "https://github.com/cloudflare/workers-sdk/issues/10712"


class VersionRow(VersionInfo):
    """A version as ``versions`` lists it: with its share of the serving deployment."""

    percentage: float | None = None


class VersionsSummary(BaseModel):
    """Counts of the ``versions`` document."""

    versions: int
    serving: int
    split: bool


class VersionsReport(BaseModel):
    """``code24ctl versions --json``."""

    command: Literal["versions"] = "versions"
    environment: str
    namespace: str
    dispatcher: str
    # The config hash the config would upload now (compare with each version's).
    config_hash: str | None
    deployment: DeploymentInfo | None
    versions: list[VersionRow]
    summary: VersionsSummary


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
    # A canary that failed after changing the deployment put ``before`` back.
    restored: bool = False
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
    target: VersionInfo
    involved: list[VersionInfo]


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


def rollout_error(resolved: ResolvedConfig, deployment: DeploymentInfo, what: str) -> UsageError:
    """The refusal to ``what`` over an unfinished gradual rollout (exit 2)."""
    env = resolved.env_name
    return UsageError(
        f"the dispatcher {resolved.dispatcher()} is in an unfinished gradual rollout "
        f"({describe(deployment)}); {what}",
        hint=f"finish it first with `code24ctl promote --env {env}` or "
        f"`code24ctl rollback --env {env}`",
    )


def _single(resolved: ResolvedConfig, deployment: DeploymentInfo) -> str:
    if deployment.split:
        raise rollout_error(resolved, deployment, "a new release would start from two versions")
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


def check_percent(percent: float) -> None:
    """A release percentage is more than 0 and at most 100."""
    if not 0 < percent <= 100:
        raise UsageError(f"the percentage must be more than 0 and at most 100, not {percent:g}")


def _split(new: str, old: str, percent: float) -> list[tuple[str, float]]:
    return [(new, 100.0)] if percent >= 100 else [(new, percent), (old, 100 - percent)]


# --------------------------------------------------------------------------------------------
# deploy --gradual


def gradual(
    session: CloudflareSession,
    resolved: ResolvedConfig,
    percent: float,
    *,
    message: str | None = None,
) -> ReleaseReport:
    """Upload a version and deploy it at ``percent``, the serving version at the rest."""
    require_versions(resolved)
    check_percent(percent)
    before = serving(session, resolved)
    old = _single(resolved, before)
    code = release_code(session, resolved)
    report = _report(resolved, "deploy", "gradual", before)
    report.version = _upload(session, resolved, code, message)
    with _unchanged_on_failure(before, report.version):
        report.after = create_deployment(
            session,
            report.dispatcher,
            _split(report.version.id, old, percent),
            message=message or f"code24ctl deploy --gradual {percent:g}",
        )
    report.changed = True
    return report


@contextmanager
def _unchanged_on_failure(before: DeploymentInfo, version: VersionInfo) -> Iterator[None]:
    """A failed deployment create: say that what serves is unchanged."""
    try:
        yield
    except CloudflareAPIError as exc:
        raise CloudflareAPIError(
            f"{exc.message}; the deployment is unchanged ({describe(before)}); version "
            f"{version.id} was uploaded and takes no traffic",
            code=exc.code,
            status=exc.status,
            hint=exc.hint,
        ) from None


# --------------------------------------------------------------------------------------------
# deploy --canary


ProbeRunner = Callable[[ResolvedConfig, ProbeOptions], ProbeReport]


def _run_probe(resolved: ResolvedConfig, options: ProbeOptions) -> ProbeReport:
    return run_plan(plan_probe(resolved, options))


def canary(
    session: CloudflareSession,
    resolved: ResolvedConfig,
    percent: float,
    *,
    message: str | None = None,
    repeat: int = CANARY_REPEAT,
    probe_options: ProbeOptions | None = None,
    probe: ProbeRunner = _run_probe,
) -> ReleaseReport:
    """Upload, probe through the override at 0%, split at ``percent``, probe again.

    The probe through the override sends ``probe_options`` as they are (every request reaches
    the new version); the one after the split sends each request ``repeat`` times, so that
    samples reach both versions.

    Never raises for a failed probe: ``ok`` is False, the deployment it started from is back
    (``restored``) and ``error`` says what failed (:func:`failure` makes the exit-1 error).
    """
    require_versions(resolved)
    check_percent(percent)
    base = probe_options or ProbeOptions()
    dispatcher = resolved.dispatcher()
    # Probe settings are checked before anything is written (no base_url, no samples: exit 2).
    plan_probe(resolved, base)
    before = serving(session, resolved)
    old = _single(resolved, before)
    code = release_code(session, resolved)
    report = _report(resolved, "deploy", "canary", before)
    new = _upload(session, resolved, code, message)
    report.version = new
    note = message or f"code24ctl deploy --canary {percent:g}"
    with _unchanged_on_failure(before, new):
        report.after = create_deployment(
            session,
            dispatcher,
            [(old, 100.0), (new.id, 0.0)],
            message=f"{note} (probe)",
        )
    report.changed = True

    through = base.model_copy(
        update={"headers": (override_header(dispatcher, new.id),), "version": new.id}
    )
    first = probe(resolved, through)
    report.add_probe("override", first)
    if not first.ok:
        return _restore(session, report, before, "the probe through the override")

    try:
        report.after = create_deployment(
            session, dispatcher, _split(new.id, old, percent), message=note
        )
    except CloudflareAPIError as exc:
        return _restore(session, report, before, f"deploying it at {percent:g}% ({exc.message})")
    second = probe(resolved, base.model_copy(update={"repeat": repeat}))
    report.add_probe("split", second)
    if not second.ok:
        return _restore(session, report, before, f"the probe at {percent:g}%")
    return report


def _restore(
    session: CloudflareSession,
    report: ReleaseReport,
    before: DeploymentInfo,
    what: str,
) -> ReleaseReport:
    report.ok = False
    shares = [(s.version_id, s.percentage) for s in before.versions]
    try:
        report.after = create_deployment(
            session, report.dispatcher, shares, message="code24ctl canary failed"
        )
    except Code24Error as exc:
        report.error = (
            f"{what} failed, and putting the deployment back failed too: {exc.message}; the "
            f"deployment is now {describe(report.after or before)}"
        )
        return report
    report.restored = True
    report.error = (
        f"{what} failed; the deployment is back as it was ({describe(before)}); "
        f"version {report.version.id if report.version else '?'} takes no traffic"
    )
    return report


def failure(report: ReleaseReport) -> Code24Error:
    """The error a failed release exits with: 1 (a probe failed), 3 when the deployment could
    not be put back (the API failed)."""
    message = report.error or "the release failed"
    if report.strategy == "canary" and not report.restored and report.before is not None:
        back = " ".join(f"{s.version_id}" for s in report.before.versions[:1])
        return CloudflareAPIError(
            message,
            hint=f"put it back with `code24ctl rollback --env {report.environment} {back} --yes`",
        )
    return CheckFailed(message)


# --------------------------------------------------------------------------------------------
# promote, rollback


def promote(session: CloudflareSession, resolved: ResolvedConfig) -> ReleaseReport:
    """Deploy the newest version at 100% (nothing is written when it already is)."""
    require_versions(resolved)
    before = serving(session, resolved)
    newest = list_versions(session, resolved.dispatcher(), 1)
    if not newest:
        raise UsageError(f"the dispatcher {resolved.dispatcher()} has no versions")
    report = _report(resolved, "promote", "promote", before)
    report.version = newest[0]
    if before.share_of(newest[0].id) == 100 and not before.split:
        report.notes.append(f"version {newest[0].id} already serves 100%: nothing to do")
        return report
    report.after = create_deployment(
        session, report.dispatcher, [(newest[0].id, 100.0)], message="code24ctl promote"
    )
    report.changed = True
    return report


def plan_rollback(
    session: CloudflareSession,
    resolved: ResolvedConfig,
    version_id: str | None = None,
) -> RollbackPlan:
    """Which version a rollback returns to: ``version_id``, or the last one that served 100%.

    The default is wrangler's: the newest earlier deployment with a version at 100%, other than
    the version serving 100% now.
    """
    require_versions(resolved)
    dispatcher = resolved.dispatcher()
    history = list_deployments(session, dispatcher)
    if not history or not history[0].versions:
        raise _not_deployed(resolved)
    before = history[0]
    if version_id is None:
        now = {s.version_id for s in before.versions if s.percentage == 100}
        for earlier in history[1:]:
            stable = [s.version_id for s in earlier.versions if s.percentage == 100]
            if stable and stable[0] not in now:
                version_id = stable[0]
                break
        if version_id is None:
            raise UsageError(
                f"no earlier version of {dispatcher} served 100% of the traffic",
                hint=f"name one: `code24ctl rollback --env {resolved.env_name} VERSION_ID` "
                f"(`code24ctl versions --env {resolved.env_name}` lists them)",
            )
    target = get_version(session, dispatcher, version_id)
    involved = [get_version(session, dispatcher, s.version_id) for s in before.versions]
    return RollbackPlan(
        environment=resolved.env_name,
        namespace=resolved.namespace(),
        dispatcher=dispatcher,
        before=before,
        target=target,
        involved=[v for v in involved if v.id != target.id] + [target],
    )


def run_rollback(
    session: CloudflareSession,
    resolved: ResolvedConfig,
    plan: RollbackPlan,
    *,
    probe_options: ProbeOptions | None = None,
    probe: ProbeRunner = _run_probe,
) -> ReleaseReport:
    """Deploy the plan's target at 100%, then probe (a failing probe leaves it deployed)."""
    report = _report(resolved, "rollback", "rollback", plan.before)
    report.version = plan.target
    report.involved = plan.involved
    if plan.before.share_of(plan.target.id) == 100 and not plan.before.split:
        report.notes.append(f"version {plan.target.id} already serves 100%: nothing to do")
    else:
        report.after = create_deployment(
            session,
            plan.dispatcher,
            [(plan.target.id, 100.0)],
            message="code24ctl rollback",
        )
        report.changed = True
    options = probe_options or ProbeOptions()
    try:
        plan_probe(resolved, options)
    except UsageError as exc:
        report.notes.append(f"not probed: {exc.message}")
        return report
    after = probe(resolved, options)
    report.add_probe("after", after)
    if not after.ok:
        report.ok = False
        report.error = (
            f"the probe after the rollback failed; version {plan.target.id} stays at 100%"
        )
    return report


# --------------------------------------------------------------------------------------------
# versions


def list_release_state(
    session: CloudflareSession,
    resolved: ResolvedConfig,
    *,
    limit: int = DEFAULT_VERSIONS_LIMIT,
) -> VersionsReport:
    """The newest ``limit`` versions (plus any serving one older than that) and the deployment."""
    require_versions(resolved)
    dispatcher = resolved.dispatcher()
    deployment = current_deployment(session, dispatcher)
    # A dispatcher never deployed has no versions (the API says "no such Worker").
    newest = list_versions(session, dispatcher, limit) if deployment else []
    rows = [VersionRow(**v.model_dump()) for v in newest]
    listed = {row.id for row in rows}
    for share in deployment.versions if deployment else []:
        if share.version_id not in listed:
            older = get_version(session, dispatcher, share.version_id)
            rows.append(VersionRow(**older.model_dump()))
    for row in rows:
        row.percentage = deployment.share_of(row.id) if deployment else None
    title = resolved.environment.kv_namespace
    kv_id = find_kv_namespace(session, title) if title else None
    expected = None
    if not title or kv_id:
        expected = config_hash(dispatcher_code(resolved, kv_id).metadata()["bindings"])
    return VersionsReport(
        environment=resolved.env_name,
        namespace=resolved.namespace(),
        dispatcher=dispatcher,
        config_hash=expected,
        deployment=deployment,
        versions=rows,
        summary=VersionsSummary(
            versions=len(rows),
            serving=len(deployment.versions) if deployment else 0,
            split=bool(deployment and deployment.split),
        ),
    )
