"""Worker Versions and Deployments of an account Worker (the dispatcher), through the SDK.

A version is an upload that is not necessarily serving; a deployment says which one or two
versions serve which share of the traffic (percentages totalling 100). A plain script ``PUT`` is
a new version deployed at 100% (developers.cloudflare.com/workers/configuration/
versions-and-deployments/).

SDK quirks this module absorbs (cloudflare 5.x, read from its source):

* the version models have no ``annotations`` field; the API sends them and the SDK keeps unknown
  keys, so they are read from the model's dict;
* ``deployments.list`` is typed as a ``V4PagePagination`` page, which looks for
  ``result.items``, but the API answers ``result.deployments``: iterating the page yields
  nothing. The list is read with a raw ``GET`` through the same client instead;
* the version models type ``resources.bindings`` as a class that is not a model, so parsing a
  create or get answer that has bindings fails inside the SDK; those answers are read raw
  (``with_raw_response``, the same call) and only what we use is taken from them;
* the script ``PUT`` answer's version id is ``deployment_id`` (wrangler reads it there), which
  the SDK model does not declare, and which may come without hyphens.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field, ValidationError

from code24ctl import __version__
from code24ctl.cloudflare.client import SCRIPT_NOT_FOUND, api_call, is_not_found
from code24ctl.cloudflare.modules import sdk_files
from code24ctl.cloudflare.outcome import write_checked
from code24ctl.errors import CloudflareAPIError, UsageError

if TYPE_CHECKING:
    from code24ctl.cloudflare.session import CloudflareSession
    from code24ctl.cloudflare.worker_code import WorkerCode

OVERRIDE_HEADER = "Cloudflare-Workers-Version-Overrides"
# Documented annotation limits (SDK MetadataAnnotations): the tag at most 100 bytes, the
# message truncated by the API at 1000 bytes.
TAG_MAX_BYTES = 100
MESSAGE_MAX_BYTES = 1000
CONFIG_HASH_CHARS = 12
#: The API's refusal to deploy a version from before a secret changed, unless forced
#: (wrangler's ``CANNOT_ROLLBACK_WITH_MODIFIED_SECERT_CODE``; its message ends with
#: "The following secrets have changed: A, B").
SECRETS_CHANGED = 10220
SECRETS_CHANGED_MARKER = "The following secrets have changed:"
_TAG = re.compile(r"^code24ctl/(?P<version>\S+) config/(?P<config>[0-9a-f]+)$")
_BARE_UUID = re.compile(r"^[0-9a-fA-F]{32}$")


class VersionInfo(BaseModel):
    """One version of the dispatcher, with what code24ctl wrote into its annotations."""

    id: str
    number: int | None = None
    created_on: str | None = None
    author: str | None = None
    source: str | None = None
    message: str | None = None
    tag: str | None = None
    triggered_by: str | None = None
    # From a tag code24ctl wrote: which code24ctl uploaded it and which config it carries.
    code24ctl_version: str | None = None
    config_hash: str | None = None


class TrafficShare(BaseModel):
    """One version's share of a deployment."""

    version_id: str
    percentage: float


class DeploymentInfo(BaseModel):
    """One deployment: the versions serving and their percentages."""

    id: str
    created_on: str | None = None
    source: str | None = None
    author: str | None = None
    message: str | None = None
    versions: list[TrafficShare] = Field(default_factory=list)

    @property
    def split(self) -> bool:
        """Two versions (a gradual rollout or a canary not finished)."""
        return len(self.versions) > 1

    @property
    def sole_version(self) -> str | None:
        """The version serving 100% on its own, or None (a split, or no version listed)."""
        return self.versions[0].version_id if len(self.versions) == 1 else None

    def share_of(self, version_id: str) -> float | None:
        """The percentage of ``version_id`` in this deployment (None if absent)."""
        return next((s.percentage for s in self.versions if s.version_id == version_id), None)


# --------------------------------------------------------------------------------------------
# Annotations (pure)


def config_hash(bindings: Sequence[Mapping[str, Any]]) -> str:
    """A short hash of the bindings (the route table is the ROUTE_TABLE binding)."""
    canonical = json.dumps(list(bindings), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:CONFIG_HASH_CHARS]


def release_tag(bindings: Sequence[Mapping[str, Any]]) -> str:
    """The ``workers/tag`` of every version code24ctl uploads (well under 100 bytes)."""
    return f"code24ctl/{__version__} config/{config_hash(bindings)}"[:TAG_MAX_BYTES]


def release_annotations(
    bindings: Sequence[Mapping[str, Any]], message: str | None = None
) -> dict[str, str]:
    """``workers/tag`` (code24ctl version, config hash) and ``workers/message``."""
    tag = release_tag(bindings)
    text = message if message else f"uploaded by code24ctl {__version__}"
    return {"workers/tag": tag, "workers/message": truncate_bytes(text, MESSAGE_MAX_BYTES)}


def truncate_bytes(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` UTF-8 bytes, never inside a character."""
    return text.encode()[:limit].decode(errors="ignore")


def override_header(dispatcher: str, version_id: str) -> tuple[str, str]:
    """The header that sends a request to ``version_id`` of ``dispatcher`` (RFC 8941 dict)."""
    return OVERRIDE_HEADER, f'{dispatcher}="{version_id}"'


def hyphenated(version_id: str) -> str:
    """A version id as a hyphenated UUID (the PUT answer may carry it without hyphens)."""
    if _BARE_UUID.match(version_id):
        v = version_id.lower()
        return f"{v[:8]}-{v[8:12]}-{v[12:16]}-{v[16:20]}-{v[20:]}"
    return version_id


def version_id_from_put(answer: object) -> str | None:
    """The version a script PUT created, from its ``deployment_id`` (None if not given)."""
    data = _as_dict(answer)
    found = data.get("deployment_id")
    return hyphenated(found) if isinstance(found, str) and found else None


def _as_dict(model: object) -> dict[str, Any]:
    if isinstance(model, dict):
        return model
    to_dict = getattr(model, "to_dict", None)
    if callable(to_dict):
        found = to_dict(mode="json")
        return found if isinstance(found, dict) else {}
    return {}


def _result(envelope: object) -> dict[str, Any]:
    """The ``result`` object of a v4 envelope (a ValueError, i.e. "unexpected", otherwise)."""
    result = envelope.get("result") if isinstance(envelope, dict) else None
    if not isinstance(result, dict):
        raise ValueError("the answer has no result object")
    return result


def _version(data: Mapping[str, Any]) -> VersionInfo:
    metadata = data.get("metadata") or {}
    annotations = data.get("annotations") or {}
    tag = annotations.get("workers/tag")
    parsed = _TAG.match(tag) if isinstance(tag, str) else None
    number = data.get("number")
    return VersionInfo(
        id=str(data.get("id") or ""),
        number=int(number) if isinstance(number, int | float) else None,
        created_on=metadata.get("created_on"),
        author=metadata.get("author_email"),
        source=metadata.get("source"),
        message=annotations.get("workers/message"),
        tag=tag,
        triggered_by=annotations.get("workers/triggered_by"),
        code24ctl_version=parsed["version"] if parsed else None,
        config_hash=parsed["config"] if parsed else None,
    )


def _deployment(data: Mapping[str, Any]) -> DeploymentInfo:
    annotations = data.get("annotations") or {}
    created = data.get("created_on")
    return DeploymentInfo(
        id=str(data.get("id") or ""),
        created_on=created if created is None else str(created),
        source=data.get("source"),
        author=data.get("author_email"),
        message=annotations.get("workers/message"),
        versions=[TrafficShare.model_validate(v) for v in data.get("versions") or []],
    )


# --------------------------------------------------------------------------------------------
# API calls


def upload_version(
    session: CloudflareSession,
    name: str,
    code: WorkerCode,
    *,
    message: str | None = None,
) -> VersionInfo:
    """``POST .../workers/scripts/{name}/versions``: the upload, annotated, not deployed.

    Only versioned metadata goes up (:func:`version_metadata`); the non-versioned settings
    (``tags`` ...) are :func:`sync_script_settings`' business.
    """
    metadata, _settings = version_metadata(code.metadata())
    metadata["annotations"] = release_annotations(metadata["bindings"], message)
    with api_call(f"upload a version of {name}"):
        created = session.client.workers.scripts.versions.with_raw_response.create(
            name,
            account_id=session.account_id,
            metadata=metadata,  # type: ignore[arg-type]  # plain JSON, SDK TypedDict
            files=sdk_files(code.modules),
            bindings_inherit="strict",
        )
        version = _version(_result(created.json()))
    if not version.id:
        raise CloudflareAPIError(f"upload a version of {name}: the API returned no version id")
    return version


def version_metadata(metadata: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split upload metadata into (what a version upload takes, the script settings).

    A version upload takes the keys of the SDK's ``workers.scripts.version_create_params.
    Metadata`` (``main_module``, ``bindings``, compatibility ...); ``tags``, ``logpush``,
    ``observability`` and ``tail_consumers`` are settings of the script, not of a version, and
    go through ``PATCH .../script-settings`` (SDK ``workers.scripts.settings.edit``; wrangler's
    ``versions upload`` sends them there with ``patchNonVersionedScriptSettings``). Anything
    else (``limits``, ``placement``, ``migrations`` ...) the version upload cannot carry at all:
    :class:`UsageError`.
    """
    from cloudflare.types.workers.scripts.setting_edit_params import SettingEditParams
    from cloudflare.types.workers.scripts.version_create_params import Metadata

    versioned = Metadata.__required_keys__ | Metadata.__optional_keys__
    settings_keys = (SettingEditParams.__required_keys__ | SettingEditParams.__optional_keys__) - {
        "account_id"
    }
    upload = {key: value for key, value in metadata.items() if key in versioned}
    settings = {key: value for key, value in metadata.items() if key in settings_keys}
    rest = sorted(set(metadata) - versioned - settings_keys)
    if rest:
        raise UsageError(
            f"a Worker version cannot carry {', '.join(rest)} (the Versions API's upload "
            "metadata has no such field)",
            hint="deploy with plain `code24ctl deploy`, which uploads the whole Worker",
        )
    return upload, settings


def sync_script_settings(session: CloudflareSession, name: str, wanted: Mapping[str, Any]) -> bool:
    """Make the script's non-versioned settings (:func:`version_metadata`'s second half) what
    ``wanted`` says: read them, and patch only what differs (as wrangler does for tags after a
    version upload). Whether anything was patched; a patch whose outcome is unknown is
    followed by a read before it counts as failed."""
    if not wanted:
        return False
    settings = session.client.workers.scripts.settings

    def differing() -> dict[str, Any]:
        with api_call(f"read the script settings of {name}"):
            current = settings.with_raw_response.get(name, account_id=session.account_id)
            now = _result(current.json())
        return {key: value for key, value in wanted.items() if now.get(key) != value}

    patch = differing()
    if not patch:
        return False
    what = f"set the script settings ({', '.join(sorted(patch))}) of {name}"

    def edit() -> bool:
        with api_call(what):
            settings.with_raw_response.edit(name, account_id=session.account_id, **patch)
        return True

    return write_checked(
        what, edit, lambda: None if differing() else True, shows="code24ctl versions"
    )


def list_versions(session: CloudflareSession, name: str, limit: int) -> list[VersionInfo]:
    """The newest ``limit`` versions, newest first (one page; no more is read)."""
    with api_call(f"list the versions of {name}"):
        page = session.client.workers.scripts.versions.list(
            name, account_id=session.account_id, per_page=limit
        )
        items = page.result.items if page.result is not None else None
        return [_version(_as_dict(item)) for item in (items or [])][:limit]


def get_version(session: CloudflareSession, name: str, version_id: str) -> VersionInfo:
    """One version by id."""
    with api_call(f"read version {version_id} of {name}"):
        found = session.client.workers.scripts.versions.with_raw_response.get(
            version_id, account_id=session.account_id, script_name=name
        )
        return _version(_result(found.json()))


def list_deployments(session: CloudflareSession, name: str) -> list[DeploymentInfo]:
    """Every deployment, newest (the one serving) first. Raw GET: see the module docstring."""
    path = f"/accounts/{session.account_id}/workers/scripts/{name}/deployments"
    with api_call(f"list the deployments of {name}"):
        result = _result(session.client.get(path, cast_to=object))
        rows = result.get("deployments")
        if rows is None:
            rows = result.get("items") or []
        try:
            return [_deployment(row) for row in rows]
        except (ValidationError, AttributeError, TypeError) as exc:
            raise ValueError(str(exc)) from None


def current_deployment(session: CloudflareSession, name: str) -> DeploymentInfo | None:
    """The deployment serving now; None when the Worker does not exist or has none."""
    try:
        found = list_deployments(session, name)
    except CloudflareAPIError as exc:
        if is_not_found(exc, SCRIPT_NOT_FOUND):
            return None
        raise
    return found[0] if found else None


def create_deployment(
    session: CloudflareSession,
    name: str,
    shares: Sequence[tuple[str, float]],
    *,
    message: str | None = None,
    force: bool = False,
) -> DeploymentInfo:
    """``POST .../deployments``: these versions at these percentages (totalling 100).

    ``force``: deploy even where the API refuses by default (a version from before a secret
    changed: :data:`SECRETS_CHANGED`)."""
    from cloudflare import omit

    split = ", ".join(f"{version_id} {percentage:g}%" for version_id, percentage in shares)
    what = f"deploy {split} of {name}"

    def create() -> DeploymentInfo:
        with api_call(what):
            created = session.client.workers.scripts.deployments.create(
                name,
                account_id=session.account_id,
                strategy="percentage",
                versions=[{"version_id": v, "percentage": p} for v, p in shares],
                annotations={"workers_message": truncate_bytes(message, MESSAGE_MAX_BYTES)}
                if message
                else {},
                force=True if force else omit,
            )
            return _deployment(_as_dict(created))

    def serving() -> DeploymentInfo | None:
        # A lost answer: the split asked for serving now means the deployment was made.
        now = current_deployment(session, name)
        wanted = {(v, float(p)) for v, p in shares}
        if now is not None and {(s.version_id, s.percentage) for s in now.versions} == wanted:
            return now
        return None

    return write_checked(what, create, serving, shows="code24ctl versions")
