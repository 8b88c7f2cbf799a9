"""``promote``: the candidate of a split, or a named version, at 100%, never unprobed."""

from __future__ import annotations

from typing import TYPE_CHECKING

from code24ctl.cloudflare.versions import (
    get_version,
    list_deployments,
)
from code24ctl.config import ResolvedConfig
from code24ctl.constants import DEFAULT_VERSION_WAIT_S
from code24ctl.errors import (
    CloudflareAPIError,
    NetworkError,
    UsageError,
)
from code24ctl.ops.release import (
    ReleaseReport,
    ReleaseSteps,
    Say,
    TargetPlan,
    deploy_split,
    describe,
    interrupted_error,
    new_report,
    not_deployed,
    quiet,
    require_versions,
    state_after,
)
from code24ctl.ops.release_state import release_state
from code24ctl.ops.rollout import (
    ProbeRunner,
    override_failure,
    restore,
    run_release_probe,
    stage_and_probe,
    through_override,
)
from code24ctl.ops.versions import (
    resolve_version,
)
from code24ctl.probe.plan import ProbeOptions, plan_probe
from code24ctl.probe.report import ProbeReport
from code24ctl.probe.send import wait_lines

if TYPE_CHECKING:
    from code24ctl.cloudflare.session import CloudflareSession


# --------------------------------------------------------------------------------------------
# promote


class PromotePlan(TargetPlan):
    """What ``promote`` will do: ``target`` to 100%, from ``before``."""

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
        raise not_deployed(resolved)
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
    probe: ProbeRunner = run_release_probe,
    wait_s: float = DEFAULT_VERSION_WAIT_S,
    say: Say = quiet,
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
    options = through_override(
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
    probe: ProbeRunner = run_release_probe,
    wait_s: float = DEFAULT_VERSION_WAIT_S,
    message: str | None = None,
    say: Say = quiet,
) -> ReleaseReport:
    """Deploy the plan's target at 100% unless ``probed`` failed (then nothing is written).

    The deployment carries ``message`` (``code24ctl promote`` when None); the 0% one that
    stages a target outside the deployment, the same with `` (probe)``.

    A target outside the deployment has not been probed yet (the override cannot reach it):
    it goes in at 0% and is probed through the override first, as a canary's version is; a
    failed probe puts the deployment back (``ok`` False, ``restored``). Ctrl-C or SIGTERM
    once anything may have been written puts the deployment back too
    (:class:`~code24ctl.errors.Interrupted`)."""
    before = plan.before
    note = message or "code24ctl promote"
    report = new_report(resolved, "promote", "promote", before)
    report.version = plan.target
    target = plan.target.id
    if probed is not None:
        report.add_probe("override", probed)
        if not probed.ok:
            report.ok = False
            report.error = (
                f"{override_failure(probed, target)} failed; nothing was changed "
                f"({describe(before)})"
            )
            report.state = plan.state
            return report
    if before.share_of(target) == 100:
        report.notes.append(f"version {target} already serves 100%: nothing to do")
        report.state = plan.state
        return report
    steps = ReleaseSteps("promote", say, uploads=False)
    try:
        if not plan.in_deployment:
            first = stage_and_probe(
                session,
                resolved,
                report,
                before,
                plan.target,
                steps,
                base=probe_options or ProbeOptions(),
                probe=probe,
                wait_s=wait_s,
                message=f"{note} (probe)",
            )
            if not first.ok:
                return restore(session, report, before, override_failure(first, target), steps)
        steps.start(f"deploying version {target} at 100%")
        try:
            report.after = deploy_split(session, report.dispatcher, [(target, 100.0)], message=note)
        except CloudflareAPIError as exc:
            if not report.changed:
                raise
            return restore(session, report, before, f"deploying it at 100% ({exc.message})", steps)
        report.changed = True
    except (KeyboardInterrupt, NetworkError) as exc:
        raise interrupted_error(session, report, before, steps, exc) from None
    report.state = state_after(report)
    return report
