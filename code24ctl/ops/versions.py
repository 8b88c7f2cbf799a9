"""``code24ctl versions``: the dispatcher's newest versions, the serving deployment's share of
each, the release state, and the config hash the config would upload now."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel

from code24ctl.cloudflare.versions import (
    DeploymentInfo,
    VersionInfo,
    config_hash,
    current_deployment,
    get_version,
    hyphenated,
    list_versions,
)
from code24ctl.config import ResolvedConfig
from code24ctl.errors import CloudflareAPIError, UsageError
from code24ctl.ops.deploy import find_kv_namespace
from code24ctl.ops.dispatcher_worker import dispatcher_code
from code24ctl.ops.release import require_versions
from code24ctl.ops.release_state import ReleaseState, read_release_state

if TYPE_CHECKING:
    from code24ctl.cloudflare.session import CloudflareSession


DEFAULT_VERSIONS_LIMIT = 10


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
    state: ReleaseState
    versions: list[VersionRow]
    summary: VersionsSummary


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
        state=read_release_state(session, resolved),
        versions=rows,
        summary=VersionsSummary(
            versions=len(rows),
            serving=len(deployment.versions) if deployment else 0,
            split=bool(deployment and deployment.split),
        ),
    )


#: How many of the newest versions a version id prefix is looked up among.
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
