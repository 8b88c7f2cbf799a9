"""The upload of a release: the dispatcher's code as ``deploy`` builds it, sent as a version
that takes no traffic (the Versions API), and read back when the answer to it is lost."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from code24ctl.cloudflare.versions import (
    VersionInfo,
    list_versions,
    release_tag,
    sync_script_settings,
    upload_version,
    version_metadata,
)
from code24ctl.config import ResolvedConfig
from code24ctl.errors import (
    CloudflareAPIError,
    Code24Error,
    NetworkError,
    UsageError,
    outcome_unknown,
)
from code24ctl.ops.deploy import find_kv_namespace
from code24ctl.ops.dispatcher_worker import dispatcher_code

if TYPE_CHECKING:
    from code24ctl.cloudflare.session import CloudflareSession
    from code24ctl.cloudflare.worker_code import WorkerCode

WORKERS_SDK_10712 = "https://github.com/cloudflare/workers-sdk/issues/10712"


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


def upload_release(
    session: CloudflareSession,
    resolved: ResolvedConfig,
    code: WorkerCode,
    message: str | None,
    *,
    settings: bool = True,
) -> VersionInfo:
    """Upload ``code`` as a version (taking no traffic); ``settings``: then make the script's
    non-versioned settings (tags, observability ...) match, which takes effect for every
    version at once (a plain deploy leaves that until its version serves 100%)."""
    dispatcher = resolved.dispatcher()
    versioned, _settings = version_metadata(code.metadata())
    newest = list_versions(session, dispatcher, 1)
    newest_before = newest[0].id if newest else None
    try:
        version = upload_version(session, dispatcher, code, message=message)
    except CloudflareAPIError as exc:
        if not outcome_unknown(exc):
            raise  # refused (a token, a binding ...): nothing was made, and it says why
        # A 5xx: the version may have been made all the same. Read before saying anything.
        found = _uploaded_after(session, resolved, newest_before, versioned, exc)
        if found is None:
            raise CloudflareAPIError(
                f"the Versions API refused the upload of {dispatcher} ({exc.message}); "
                "nothing was changed",
                code=exc.code,
                status=exc.status,
                hint="retry; if it keeps failing, `code24ctl deploy --env "
                f"{resolved.env_name} --unprobed` uploads and deploys the dispatcher in one "
                "step, live at 100% without a probe (no version override, no gradual "
                "rollout); Workers for Platforms users have met this for a "
                f"dispatch-namespace binding ({WORKERS_SDK_10712})",
            ) from None
        version = found
    # Tags and the other non-versioned settings belong to the script, not to the version.
    if settings:
        sync_release_settings(session, resolved, code, version)
    return version


def sync_release_settings(
    session: CloudflareSession, resolved: ResolvedConfig, code: WorkerCode, version: VersionInfo
) -> None:
    """Make the script's non-versioned settings match ``code``, after ``version`` was
    uploaded; an API failure names that version (a network failure is the caller's: it reads
    what serves and names the version it already holds)."""
    dispatcher = resolved.dispatcher()
    _versioned, script_settings = version_metadata(code.metadata())
    try:
        sync_script_settings(session, dispatcher, script_settings)
    except NetworkError:
        raise
    except Code24Error as exc:
        # The version exists by now: the error must not read as if nothing was done.
        exc.message = (
            f"{exc.message}; version {version.id} was uploaded before and takes no traffic "
            "(the deployment is unchanged)"
        )
        exc.args = (exc.message,)
        raise


def _uploaded_after(
    session: CloudflareSession,
    resolved: ResolvedConfig,
    newest_before: str | None,
    versioned: dict[str, Any],
    lost: CloudflareAPIError,
) -> VersionInfo | None:
    """The version a lost upload made (newer than ``newest_before``, tagged with this
    upload's config), or None when the versions show none."""
    dispatcher = resolved.dispatcher()
    try:
        newest = list_versions(session, dispatcher, 1)
    except Code24Error as exc:
        raise CloudflareAPIError(
            f"upload a version of {dispatcher}: cannot tell whether it was made: the answer was "
            f"lost ({lost.message}) and reading the versions failed ({exc.message}); any "
            "version it made takes no traffic, and the deployment is unchanged",
            hint=f"`code24ctl versions --env {resolved.env_name}` shows it; rerun once it answers",
            unknown_outcome=True,
        ) from None
    tag = release_tag(versioned["bindings"])
    if newest and newest[0].id != newest_before and newest[0].tag == tag:
        return newest[0]
    return None
