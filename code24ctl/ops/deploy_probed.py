"""The dispatcher upload of a plain ``deploy`` (and ``apply``): probed unless nothing serves.

Over a serving dispatcher the new code goes up as a version (the Versions API, as a release
uploads it), is deployed at 0% beside the version serving 100% (the override reaches only a
version in the current deployment), probed through ``Cloudflare-Workers-Version-Overrides``
(:func:`~code24ctl.ops.rollout.stage_and_probe`) and deployed at 100% only when that probe
passes. A failed probe or a refused deployment puts the deployment back; Ctrl-C or SIGTERM at
any step does too (:func:`~code24ctl.ops.release.interrupted_error`).

The script PUT (live at 100% at once) stays for a first deploy, where nothing serves and the
override reaches nothing, and for ``--unprobed``: the way past a Versions API that refuses a
dispatcher with a dispatch-namespace binding (cloudflare/workers-sdk#10712).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from code24ctl.cloudflare.client import api_call
from code24ctl.cloudflare.modules import sdk_files
from code24ctl.cloudflare.outcome import write_checked
from code24ctl.cloudflare.pacing import sent_once
from code24ctl.cloudflare.versions import (
    DeploymentInfo,
    current_deployment,
    get_version,
    release_annotations,
    sync_script_settings,
    version_id_from_put,
    version_metadata,
)
from code24ctl.config import ResolvedConfig
from code24ctl.errors import CloudflareAPIError, Code24Error, NetworkError, UsageError
from code24ctl.ops.changes import ChangeLog
from code24ctl.ops.deploy import FIRST_DEPLOY, UNPROBED, DeployReport, Probing
from code24ctl.ops.release import (
    ReleaseReport,
    ReleaseSteps,
    deploy_split,
    describe,
    interrupted_error,
    new_report,
    put_back_error,
    quiet,
)
from code24ctl.ops.release_upload import upload_release
from code24ctl.ops.rollout import override_failure, restore, run_release_probe, stage_and_probe
from code24ctl.probe.plan import ProbeOptions, plan_probe

if TYPE_CHECKING:
    from code24ctl.cloudflare.session import CloudflareSession
    from code24ctl.cloudflare.worker_code import WorkerCode


def check_probe_settings(resolved: ResolvedConfig) -> None:
    """Refuse (exit 2) a probed upload the config cannot probe (no base_url, no sample),
    before anything is written, naming the two ways forward."""
    try:
        plan_probe(resolved, ProbeOptions())
    except UsageError as exc:
        env = resolved.env_name
        raise UsageError(
            f"{exc.message}: a new dispatcher version is probed through the version override "
            "before it takes traffic",
            hint=f"set environments.{env}.base_url in {resolved.path}, or rerun with "
            "--unprobed to upload it live at 100% without a probe",
        ) from None


def upload_step(
    session: CloudflareSession,
    resolved: ResolvedConfig,
    result: DeployReport,
    code: WorkerCode,
    probing: Probing,
    log: ChangeLog,
) -> None:
    """Upload ``code`` as the dispatcher: probed when a deployment serves (unless
    ``probing.unprobed``), by script PUT otherwise. ``result`` says what happened; ``ok``
    False (the deployment put back) when the probe or the 100% deployment failed."""
    probed = result.deployed and not probing.unprobed
    before = current_deployment(session, result.dispatcher) if probed else None
    if before is not None and before.versions:
        _probed(session, resolved, result, code, before, probing, log)
        return
    if probed:
        # The Worker exists (its content was read) but no deployment was: nothing to stage the
        # new version beside, and no reason to believe nothing serves. Never live unprobed
        # unless told.
        raise UsageError(
            f"the dispatcher {result.dispatcher} exists but no deployment of it could be read, "
            "so its new version cannot be probed through the version override; nothing was "
            "uploaded",
            hint=f"check with `code24ctl versions --env {result.environment}`; rerun with "
            "--unprobed to upload it live at 100% without a probe",
        )
    result.unprobed = UNPROBED if probing.unprobed else FIRST_DEPLOY
    # What serves before the upload (None for a first deploy): a lost answer is read back
    # against it.
    serving = current_deployment(session, result.dispatcher) if result.deployed else None
    result.version_id = upload_dispatcher(
        session, result.dispatcher, code, serving=serving.sole_version if serving else None
    )
    result.uploaded = True
    version = result.version_id or "(id not reported by the API)"
    log.record(
        "dispatcher",
        result.dispatcher,
        "uploaded",
        f"version {version} live at 100%, not probed",
    )


def _probed(
    session: CloudflareSession,
    resolved: ResolvedConfig,
    result: DeployReport,
    code: WorkerCode,
    before: DeploymentInfo,
    probing: Probing,
    log: ChangeLog,
) -> None:
    dispatcher = result.dispatcher
    result.before = result.after = before
    report = new_report(resolved, "deploy", "deploy", before)
    steps = ReleaseSteps("deploy", probing.say or quiet)
    try:
        steps.start(f"uploading a new version of {dispatcher}")
        steps.upload_started = True
        # The script settings wait for the probe: they take effect for every version at once.
        new = upload_release(session, resolved, code, None, settings=False)
        report.version = new
        result.version_id, result.uploaded = new.id, True
        log.record("dispatcher", dispatcher, "uploaded", f"version {new.id}, taking no traffic")

        def staged(shares: list[tuple[str, float]], message: str) -> DeploymentInfo:
            # Logged as it lands: an interrupt during the probe names it too.
            deployed = deploy_split(session, dispatcher, shares, message=message)
            log.record("dispatcher", dispatcher, "deployed", f"{describe(deployed)}, to probe")
            return deployed

        first = stage_and_probe(
            session,
            resolved,
            report,
            before,
            new,
            steps,
            base=probing.options or ProbeOptions(),
            probe=probing.runner or run_release_probe,
            wait_s=probing.wait_s,
            message="code24ctl deploy (probe)",
            deploy=staged,
        )
        result.probe, result.after = first, report.after
        if not first.ok:
            _put_back(session, result, report, before, override_failure(first, new.id), steps, log)
            return
        steps.start(f"deploying version {new.id} at 100%")
        try:
            report.after = deploy_split(
                session, dispatcher, [(new.id, 100.0)], message="code24ctl deploy"
            )
        except CloudflareAPIError as exc:
            what = f"deploying it at 100% ({exc.message})"
            _put_back(session, result, report, before, what, steps, log)
            return
        result.after, result.probed = report.after, True
        log.record("dispatcher", dispatcher, "deployed", f"{new.id} 100%, probed")
    except (KeyboardInterrupt, NetworkError) as exc:
        error = interrupted_error(session, report, before, steps, exc)
        if f"; put back {describe(before)}" in error.message:
            log.record("dispatcher", dispatcher, "put back", describe(before))
        raise error from None
    _versioned, settings = version_metadata(code.metadata())
    if sync_script_settings(session, dispatcher, settings):
        log.record("dispatcher", dispatcher, "settings set", ", ".join(sorted(settings)))


def _put_back(
    session: CloudflareSession,
    result: DeployReport,
    report: ReleaseReport,
    before: DeploymentInfo,
    what: str,
    steps: ReleaseSteps,
    log: ChangeLog,
) -> None:
    restore(session, report, before, what, steps)
    result.ok = False
    result.after, result.restored = report.after, report.restored
    result.put_back_failed, result.error = report.put_back_failed, report.error
    if report.restored:
        log.record("dispatcher", result.dispatcher, "put back", describe(before))


def deploy_failure(result: DeployReport) -> Code24Error:
    """The error a plain deploy whose probed upload failed exits with: 1 (the probe failed,
    the deployment is back), 3 when the deployment could not be put back."""
    return put_back_error(
        result.error or "the deploy failed",
        put_back_failed=result.put_back_failed,
        before=result.before,
        environment=result.environment,
    )


def upload_dispatcher(
    session: CloudflareSession, name: str, code: WorkerCode, *, serving: str | None = None
) -> str | None:
    """``PUT /accounts/{a}/workers/scripts/{name}``: the metadata part plus the modules, live
    at 100% at once.

    The version it creates is annotated like every code24ctl upload
    (:func:`~code24ctl.cloudflare.versions.release_annotations`); returns its id, or None when
    the answer does not carry one. An answer lost after the upload may have been made is read
    back: the upload was made when a version other than ``serving`` (the one serving 100%
    before, None for a first deploy) serves 100%, tagged as this one.
    """
    metadata = code.metadata()
    metadata["annotations"] = release_annotations(metadata["bindings"])
    tag = metadata["annotations"]["workers/tag"]

    def put() -> str | None:
        # Not repeated by the transport after a 5xx or a lost answer: each PUT that is carried
        # out makes a version, so the state is read back first (write_checked).
        with sent_once(), api_call(f"upload dispatcher Worker {name}"):
            answer = session.client.workers.scripts.update(
                name,
                account_id=session.account_id,
                metadata=metadata,  # type: ignore[arg-type]  # plain JSON, SDK TypedDict
                files=sdk_files(code.modules),
            )
        return version_id_from_put(answer)

    def made() -> str | None:
        now = current_deployment(session, name)
        live = now.sole_version if now is not None else None
        if live is None or live == serving or get_version(session, name, live).tag != tag:
            return None
        return live

    return write_checked(
        f"upload dispatcher Worker {name}",
        put,
        made,
        shows=f"code24ctl versions (the dispatcher {name})",
    )
