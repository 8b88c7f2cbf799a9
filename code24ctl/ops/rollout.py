"""``deploy --gradual`` and ``deploy --canary``: a new version of the dispatcher, split.

Both put the new version into the deployment at 0% first, because the
``Cloudflare-Workers-Version-Overrides`` header is only honoured for a version that is in the
current deployment (developers.cloudflare.com/workers/configuration/versions-and-deployments/
gradual-deployments/#version-overrides). They probe the version through that header, then
split the traffic (a canary probes again); a failure at any point puts the deployment they
started from back: no version takes traffic unprobed. ``promote`` and ``rollback`` stage an
unproven version the same way (:func:`stage_and_probe`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Literal

from code24ctl.cloudflare.versions import (
    DeploymentInfo,
    VersionInfo,
    override_header,
)
from code24ctl.config import ResolvedConfig
from code24ctl.constants import DEFAULT_VERSION_WAIT_S
from code24ctl.errors import (
    CloudflareAPIError,
    Code24Error,
    NetworkError,
    outcome_unknown,
)
from code24ctl.ops.release import (
    CANARY_REPEAT,
    ReleaseReport,
    ReleaseSteps,
    Say,
    back_to,
    check_percent,
    deploy_split,
    describe,
    interrupted_error,
    new_report,
    quiet,
    require_versions,
    serving,
    single_version,
    split_shares,
    state_after,
)
from code24ctl.ops.release_upload import release_code, sync_release_settings, upload_release
from code24ctl.probe.plan import ProbeOptions, plan_probe
from code24ctl.probe.report import ProbeReport
from code24ctl.probe.runner import VERSION_NOT_APPLIED, run_plan
from code24ctl.probe.send import WaitCallback, wait_lines

if TYPE_CHECKING:
    from code24ctl.cloudflare.session import CloudflareSession


@contextmanager
def _unchanged_on_failure(
    before: DeploymentInfo, version: VersionInfo, *, uploaded: bool = True
) -> Iterator[None]:
    """A failed deployment create of ``version`` at 0%: say what serves. When its outcome is
    unknown (the answer lost and the read back failed too), the version may be in at 0%: it
    takes no traffic either way, and that is what is said."""
    try:
        yield
    except CloudflareAPIError as exc:
        where = f"the deployment is unchanged ({describe(before)})"
        if outcome_unknown(exc):
            # The stage may have landed: the version at 0% beside the one that served 100% (of
            # a split, its stable version now at 100%).
            where += f" or is now {back_to(before)} 100%, {version.id} 0%"
        raise CloudflareAPIError(
            f"{exc.message}; {where}; version {version.id} "
            f"{'was uploaded and ' if uploaded else ''}takes no traffic",
            code=exc.code,
            status=exc.status,
            hint=exc.hint,
            unknown_outcome=outcome_unknown(exc),
        ) from None


# --------------------------------------------------------------------------------------------
# deploy --gradual and --canary


ProbeRunner = Callable[[ResolvedConfig, ProbeOptions, WaitCallback | None], ProbeReport]


def run_release_probe(
    resolved: ResolvedConfig, options: ProbeOptions, on_wait: WaitCallback | None = None
) -> ProbeReport:
    return run_plan(plan_probe(resolved, options), on_wait=on_wait)


def through_override(
    options: ProbeOptions, dispatcher: str, version_id: str, wait_s: float
) -> ProbeOptions:
    return options.model_copy(
        update={
            "headers": (override_header(dispatcher, version_id),),
            "version": version_id,
            "version_wait_s": wait_s,
        }
    )


def override_failure(report: ProbeReport, version_id: str) -> str:
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


def stage_and_probe(
    session: CloudflareSession,
    resolved: ResolvedConfig,
    report: ReleaseReport,
    before: DeploymentInfo,
    version: VersionInfo,
    steps: ReleaseSteps,
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
        beside = back_to(before)
        steps.start(
            f"deploying version {version.id} at 0% beside {beside} (100%), so that the version "
            "override reaches it"
        )
        with _unchanged_on_failure(before, version, uploaded=steps.uploads):
            shares = [(beside, 100.0), (version.id, 0.0)]
            if deploy is None:
                report.after = deploy_split(session, dispatcher, shares, message=message)
            else:
                report.after = deploy(shares, message)
        report.changed = True
    steps.start(f"probing version {version.id} through the version override")
    first = probe(
        resolved,
        through_override(base, dispatcher, version.id, wait_s),
        wait_lines(steps.say, version.id, wait_s),
    )
    report.add_probe("override", first)
    return first


def gradual(
    session: CloudflareSession,
    resolved: ResolvedConfig,
    percent: float,
    *,
    message: str | None = None,
    probe_options: ProbeOptions | None = None,
    probe: ProbeRunner = run_release_probe,
    wait_s: float = DEFAULT_VERSION_WAIT_S,
    say: Say = quiet,
) -> ReleaseReport:
    """Upload, probe through the override at 0%, then deploy at ``percent``, the serving
    version at the rest: a canary without the probe after the split, so that no version takes
    traffic unprobed.

    Never raises for a failed probe: ``ok`` is False, the deployment it started from is back
    (``restored``) and ``error`` says what failed (:func:`failure` makes the exit-1 error).
    Ctrl-C or SIGTERM at any step puts the deployment it started from back
    (:class:`~code24ctl.errors.Interrupted`, saying what was done)."""
    return _split_release(
        session,
        resolved,
        percent,
        "gradual",
        message=message,
        repeat=None,
        probe_options=probe_options,
        probe=probe,
        wait_s=wait_s,
        say=say,
    )


def canary(
    session: CloudflareSession,
    resolved: ResolvedConfig,
    percent: float,
    *,
    message: str | None = None,
    repeat: int = CANARY_REPEAT,
    probe_options: ProbeOptions | None = None,
    probe: ProbeRunner = run_release_probe,
    wait_s: float = DEFAULT_VERSION_WAIT_S,
    say: Say = quiet,
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
    return _split_release(
        session,
        resolved,
        percent,
        "canary",
        message=message,
        repeat=repeat,
        probe_options=probe_options,
        probe=probe,
        wait_s=wait_s,
        say=say,
    )


def _split_release(
    session: CloudflareSession,
    resolved: ResolvedConfig,
    percent: float,
    strategy: Literal["gradual", "canary"],
    *,
    message: str | None,
    repeat: int | None,
    probe_options: ProbeOptions | None,
    probe: ProbeRunner,
    wait_s: float,
    say: Say,
) -> ReleaseReport:
    """:func:`gradual` and :func:`canary`: the same steps, and a probe after the split when
    ``repeat`` is given (the canary's)."""
    require_versions(resolved)
    check_percent(percent)
    base = probe_options or ProbeOptions()
    dispatcher = resolved.dispatcher()
    # Probe settings are checked before anything is written (no base_url, no samples: exit 2).
    plan_probe(resolved, base)
    before = serving(session, resolved)
    old = single_version(session, resolved, before)
    code = release_code(session, resolved)
    report = new_report(resolved, "deploy", strategy, before)
    note = message or f"code24ctl deploy --{strategy} {percent:g}"
    steps = ReleaseSteps(strategy, say)
    try:
        steps.start(f"uploading a new version of {dispatcher}")
        steps.upload_started = True
        new = upload_release(session, resolved, code, message, settings=False)
        report.version = new
        sync_release_settings(session, resolved, code, new)
        first = stage_and_probe(
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
            return restore(session, report, before, override_failure(first, new.id), steps)

        steps.start(f"deploying version {new.id} at {percent:g}%, {old} at {100 - percent:g}%")
        try:
            report.after = deploy_split(
                session, dispatcher, split_shares(new.id, old, percent), message=note
            )
        except CloudflareAPIError as exc:
            what = f"deploying it at {percent:g}% ({exc.message})"
            return restore(session, report, before, what, steps)
        if repeat is not None:
            steps.start(f"probing after the split ({repeat} requests per route)")
            second = probe(resolved, base.model_copy(update={"repeat": repeat}), None)
            report.add_probe("split", second)
            if not second.ok:
                return restore(session, report, before, f"the probe at {percent:g}%", steps)
    except (KeyboardInterrupt, NetworkError) as exc:
        raise interrupted_error(session, report, before, steps, exc) from None
    report.state = state_after(report)
    return report


def restore(
    session: CloudflareSession,
    report: ReleaseReport,
    before: DeploymentInfo,
    what: str,
    steps: ReleaseSteps,
) -> ReleaseReport:
    report.ok = False
    shares = [(s.version_id, s.percentage) for s in before.versions]
    steps.start(f"{what} failed: putting back {describe(before)}")
    try:
        report.after = deploy_split(
            session, report.dispatcher, shares, message=f"code24ctl {steps.strategy} failed"
        )
    except Code24Error as exc:
        report.put_back_failed = True
        now = describe(report.after or before)
        if outcome_unknown(exc):
            # The put-back's answer was lost and could not be read back: it may have happened.
            now = f"{now}, or back as it was ({describe(before)})"
        report.error = (
            f"{what} failed, and putting the deployment back failed too: {exc.message}; the "
            f"deployment is now {now}"
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
