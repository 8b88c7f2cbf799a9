"""``code24ctl versions``: the dispatcher's newest versions, the serving deployment's share of
each, the release state, and the config hash the config would upload now."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel

from code24ctl.cloudflare.versions import (
    DeploymentInfo,
    VersionInfo,
    config_hash,
    current_deployment,
    get_version,
    list_versions,
)
from code24ctl.config import ResolvedConfig
from code24ctl.ops.deploy import dispatcher_code, find_kv_namespace
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
