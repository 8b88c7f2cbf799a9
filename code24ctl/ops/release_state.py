"""The one release state of the dispatcher: nothing deployed, one version at 100%, or a split
between a stable version and a candidate, in the words every command uses (``versions``,
``doctor``, ``plan``, each release)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel

from code24ctl.cloudflare.versions import (
    DeploymentInfo,
    TrafficShare,
    list_deployments,
)
from code24ctl.config import ResolvedConfig
from code24ctl.errors import (
    CloudflareAPIError,
)

if TYPE_CHECKING:
    from code24ctl.cloudflare.session import CloudflareSession


class ReleaseState(BaseModel):
    """The one release state: nothing deployed, one version at 100%, or a split between a
    *stable* version (the one that served 100% before) and a *candidate*.

    ``words`` is how every command names it."""

    kind: Literal["none", "single", "split"]
    stable: TrafficShare | None = None
    candidate: TrafficShare | None = None
    words: str


def release_state(history: list[DeploymentInfo]) -> ReleaseState:
    """The state of the serving deployment (``history[0]``), newest first.

    In a split, the stable version is the one of the two that the newest earlier deployment
    served at 100%; without such a deployment, the one with the larger share.
    """
    if not history or not history[0].versions:
        return ReleaseState(kind="none", words="not deployed")
    now = history[0]
    if not now.split:
        only = now.versions[0]
        return ReleaseState(
            kind="single", stable=only, words=f"one version: {only.version_id} at 100%"
        )
    ids = {s.version_id for s in now.versions}
    stable_id = None
    for earlier in history[1:]:
        full = [s.version_id for s in earlier.versions if s.percentage == 100]
        if full and full[0] in ids:
            stable_id = full[0]
            break
    if stable_id is None:
        # The larger share; on a tie the second listed (releases list the new one first).
        stable_id = max(reversed(now.versions), key=lambda s: s.percentage).version_id
    stable = next(s for s in now.versions if s.version_id == stable_id)
    candidate = next(s for s in now.versions if s.version_id != stable_id)
    return ReleaseState(
        kind="split",
        stable=stable,
        candidate=candidate,
        words=f"split: stable {stable.version_id} at {stable.percentage:g}%, candidate "
        f"{candidate.version_id} at {candidate.percentage:g}%",
    )


def read_release_state(session: CloudflareSession, resolved: ResolvedConfig) -> ReleaseState:
    """The dispatcher's release state now (``not deployed`` when it never was)."""
    from code24ctl.cloudflare.client import SCRIPT_NOT_FOUND, is_not_found

    try:
        return release_state(list_deployments(session, resolved.dispatcher()))
    except CloudflareAPIError as exc:
        if is_not_found(exc, SCRIPT_NOT_FOUND):
            return release_state([])
        raise
