"""``rollback``: back to the stable version of a split, the previous one, or a named one."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from code24ctl.cloudflare.versions import (
    SECRETS_CHANGED,
    SECRETS_CHANGED_MARKER,
    DeploymentInfo,
    get_version,
    list_deployments,
)
from code24ctl.config import ResolvedConfig
from code24ctl.constants import DEFAULT_VERSION_WAIT_S
from code24ctl.errors import (
    Aborted,
    CloudflareAPIError,
    NetworkError,
    UsageError,
)
from code24ctl.ops.promote import require_probe
from code24ctl.ops.release import (
    ReleaseReport,
    ReleaseSteps,
    RollbackPlan,
    Say,
    deploy_split,
    describe,
    interrupted_error,
    interrupted_keeping,
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
)
from code24ctl.ops.versions import (
    resolve_version,
)
from code24ctl.probe.plan import ProbeOptions, plan_probe

if TYPE_CHECKING:
    from code24ctl.cloudflare.session import CloudflareSession


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
        raise not_deployed(resolved)
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
    probe: ProbeRunner = run_release_probe,
    confirm_force: Callable[[list[str]], bool] | None = None,
    wait_s: float = DEFAULT_VERSION_WAIT_S,
    message: str | None = None,
    say: Say = quiet,
) -> ReleaseReport:
    """Deploy the plan's target at 100%, then probe (a failing probe leaves it deployed).

    The deployment carries ``message`` (``code24ctl rollback`` when None); the 0% one that
    stages an unproven target, the same with `` (probe)``.

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
    note = message or "code24ctl rollback"
    report = new_report(resolved, "rollback", "rollback", before)
    report.version = plan.target
    report.involved = plan.involved
    forced: list[str] = []

    def deploy(shares: list[tuple[str, float]], message: str) -> DeploymentInfo:
        try:
            return deploy_split(
                session, plan.dispatcher, shares, message=message, force=bool(forced)
            )
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
            return deploy_split(session, plan.dispatcher, shares, message=message, force=True)

    steps = ReleaseSteps("rollback", say, uploads=False)
    if before.share_of(target) == 100 and not before.split:
        report.notes.append(f"version {target} already serves 100%: nothing to do")
    elif not plan.proven:
        try:
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
                deploy=deploy,
            )
            if not first.ok:
                return restore(session, report, before, override_failure(first, target), steps)
            steps.start(f"deploying version {target} at 100%")
            try:
                report.after = deploy([(target, 100.0)], note)
            except CloudflareAPIError as exc:
                if not report.changed:
                    raise
                what = f"deploying it at 100% ({exc.message})"
                return restore(session, report, before, what, steps)
            report.changed = True
        except (KeyboardInterrupt, NetworkError) as exc:
            raise interrupted_error(session, report, before, steps, exc) from None
        _forced_note(report, forced, target)
        report.state = state_after(report)
        return report
    else:
        try:
            steps.start(f"deploying version {target} at 100%")
            report.after = deploy([(target, 100.0)], note)
        except (KeyboardInterrupt, NetworkError) as exc:
            raise interrupted_keeping(session, report, before, steps, exc, target) from None
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
    except (KeyboardInterrupt, NetworkError) as exc:
        raise interrupted_keeping(session, report, before, steps, exc, target) from None
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
