"""Worker Versions and Deployments of account-level Workers (the dispatcher's release API).

What the emulator does, and where each rule comes from (sources in README.md, "Versions and
deployments"):

* every ``PUT .../workers/scripts/{name}`` of an account Worker is a new version deployed at
  100% (docs: versions-and-deployments), and its answer carries that version's id as
  ``deployment_id`` (wrangler reads it there; the SDK model has no such field);
* ``POST .../versions`` stores a version without deploying it: what the Worker serves stays the
  same (SDK ``versions.create``: "Upload a Worker Version without deploying");
* ``POST .../deployments``: one or two versions of this Worker, each 0..100 percent, totalling
  exactly 100 (within 0.001, as wrangler checks); anything else is refused;
* lists are newest first: versions as ``result.items`` with ``result_info`` (the SDK's
  ``V4PagePagination``), deployments as ``result.deployments`` (``DeploymentListResponse``);
* :attr:`VersionStore.refuse_dispatch_namespace_uploads` makes a version upload that carries a
  ``dispatch_namespace`` binding answer 500, as reported in cloudflare/workers-sdk#10712.

What the Worker "is" between versions (``GET`` of its content and settings) follows the version
with the most traffic; no public source says what the real API shows for a split deployment,
nor whether it shows the deployed version or the newest upload:
:attr:`VersionStore.content_shows_newest_upload` gives tests the other candidate.
"""

from __future__ import annotations

import copy
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import errors
from .errors import ApiError
from .models import SECRET_BINDING_TYPES, Script, now_iso

if TYPE_CHECKING:
    from starlette.responses import Response

    from .app import Ctx, Handler

__all__ = ["OVERRIDE_HEADER", "VersionStore", "WorkerDeployment", "WorkerVersion", "routes"]

OVERRIDE_HEADER = "cloudflare-workers-version-overrides"
# The email the emulator gives as every version's and deployment's author.
AUTHOR_EMAIL = "emulator@code24.test"
AUTHOR_ID = "e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0"
PERCENT_EPSILON = 0.001
MAX_DEPLOYMENT_VERSIONS = 2
# The documented annotation limits: the tag is refused over 100 bytes, the message truncated
# at 1000 bytes (SDK version_create_params.MetadataAnnotations docstrings).
TAG_MAX_BYTES = 100
MESSAGE_MAX_BYTES = 1000
# wrangler's CANNOT_ROLLBACK_WITH_MODIFIED_SECERT_CODE (versions/rollback): a deployment of an
# older version after a secret changed, refused unless ``?force=true``.
SECRETS_CHANGED = 10220


@dataclass
class WorkerVersion:
    """One uploaded version: a frozen copy of the Worker as it was uploaded."""

    id: str
    number: int
    snapshot: Script
    created_on: str
    source: str
    annotations: dict[str, str]

    def metadata(self) -> dict[str, Any]:
        """The ``metadata`` object of version answers (SDK ``Metadata``)."""
        return {
            "author_email": AUTHOR_EMAIL,
            "author_id": AUTHOR_ID,
            "created_on": self.created_on,
            "modified_on": self.created_on,
            "source": self.source,
            "hasPreview": False,
        }

    def to_list_item(self) -> dict[str, Any]:
        """A row of the versions list (SDK ``VersionListResponse`` plus the annotations)."""
        return {
            "id": self.id,
            "number": self.number,
            "metadata": self.metadata(),
            "annotations": dict(self.annotations),
        }

    def to_api(self) -> dict[str, Any]:
        """One version in full (SDK ``VersionGetResponse`` / ``VersionCreateResponse``)."""
        script = self.snapshot
        return {
            **self.to_list_item(),
            "resources": {
                "bindings": script.public_bindings(),
                "script": {
                    "etag": script.etag,
                    "handlers": ["fetch"],
                    "named_handlers": [],
                    "last_deployed_from": "api",
                },
                "script_runtime": {
                    "compatibility_date": script.compatibility_date,
                    "compatibility_flags": list(script.compatibility_flags),
                    "usage_model": script.usage_model,
                    "limits": copy.deepcopy(script.limits) if script.limits else {},
                },
            },
        }

    def to_upload_api(self) -> dict[str, Any]:
        """The answer to the upload: :meth:`to_api` and ``startup_time_ms``, which only the
        SDK's ``VersionCreateResponse`` has (wrangler logs it as "Worker Startup Time")."""
        return {**self.to_api(), "startup_time_ms": 1}


@dataclass
class WorkerDeployment:
    """One deployment: which versions serve which share of the traffic."""

    id: str
    created_on: str
    source: str
    versions: list[dict[str, Any]]
    annotations: dict[str, str] = field(default_factory=dict)
    # When it started serving (time.monotonic), for the test site's propagation delay.
    applied_at: float = field(default_factory=time.monotonic)

    def to_api(self) -> dict[str, Any]:
        """As the SDK's ``Deployment`` model says."""
        return {
            "id": self.id,
            "created_on": self.created_on,
            "source": self.source,
            "strategy": "percentage",
            "versions": copy.deepcopy(self.versions),
            "annotations": dict(self.annotations),
            "author_email": AUTHOR_EMAIL,
        }


@dataclass
class _History:
    versions: list[WorkerVersion] = field(default_factory=list)  # oldest first
    deployments: list[WorkerDeployment] = field(default_factory=list)  # oldest first


class VersionStore:
    """Versions and deployments of every account Worker, keyed by (account id, script name).

    Lives on :class:`~tests.emulator.state.EmulatorState` as ``state.versions`` and is guarded
    by the state's lock like everything else.
    """

    def __init__(self) -> None:
        self._history: dict[tuple[str, str], _History] = {}
        #: Answer a version upload with a dispatch_namespace binding 500 (workers-sdk#10712).
        self.refuse_dispatch_namespace_uploads = False
        #: The other unsettled candidate: the content GET shows the newest version uploaded,
        #: deployed or not (by default it shows the version serving the most traffic).
        self.content_shows_newest_upload = False

    # ------------------------------------------------------------------ inspection (tests)
    def versions(self, account_id: str, name: str) -> list[WorkerVersion]:
        """The Worker's versions, newest first (copies)."""
        found = self._history.get((account_id, name))
        return copy.deepcopy(list(reversed(found.versions))) if found else []

    def deployments(self, account_id: str, name: str) -> list[WorkerDeployment]:
        """The Worker's deployments, newest (the one serving) first (copies)."""
        found = self._history.get((account_id, name))
        return copy.deepcopy(list(reversed(found.deployments))) if found else []

    def split(self, account_id: str, name: str) -> dict[str, float]:
        """The serving deployment as ``{version id: percentage}`` (empty if none)."""
        found = self.deployments(account_id, name)
        return {v["version_id"]: v["percentage"] for v in found[0].versions} if found else {}

    # ------------------------------------------------------------------ hooks (state, app)
    def on_upload(
        self,
        container: dict[str, Script],
        script: Script,
        previous: Script | None,
        *,
        deploy: bool,
        source: str = "api",
    ) -> WorkerVersion:
        """Record ``script`` (just stored in ``container``) as a new version.

        ``deploy`` (a script PUT): it also becomes a 100% deployment. Otherwise (a version
        upload) ``container`` gets ``previous`` back: an upload alone changes nothing served.
        """
        history = self._history.setdefault((script.account_id, script.name), _History())
        annotations = _annotations(script.metadata.get("annotations"))
        if deploy:
            annotations.setdefault("workers/triggered_by", "upload")
        else:
            annotations.setdefault("workers/triggered_by", "version_upload")
        version = WorkerVersion(
            id=str(uuid.uuid4()),
            number=len(history.versions) + 1,
            snapshot=copy.deepcopy(script),
            created_on=now_iso(),
            source=source,
            annotations=annotations,
        )
        history.versions.append(version)
        if deploy:
            history.deployments.append(
                WorkerDeployment(
                    id=str(uuid.uuid4()),
                    created_on=version.created_on,
                    source=source,
                    versions=[{"version_id": version.id, "percentage": 100.0}],
                    annotations={"workers/triggered_by": "upload"},
                )
            )
        elif previous is not None and not self.content_shows_newest_upload:
            container[script.name] = previous
        elif previous is not None:
            # Settings of the script, not of a version, stay as they were (as in deploy()).
            script.tags, script.logpush = list(previous.tags), previous.logpush
            script.tail_consumers = copy.deepcopy(previous.tail_consumers)
            script.observability = copy.deepcopy(previous.observability)
        return version

    def latest_version_id(self, account_id: str, name: str) -> str | None:
        """The newest version's id (the ``deployment_id`` of a script PUT answer)."""
        found = self._history.get((account_id, name))
        return found.versions[-1].id if found and found.versions else None

    def deploy(
        self,
        container: dict[str, Script],
        account_id: str,
        name: str,
        body: dict[str, Any],
        *,
        force: bool = False,
    ) -> WorkerDeployment:
        """Validate and store a deployment; the Worker then serves its largest version.

        A version that is not in the current deployment and whose secrets differ from the
        Worker's now is refused with 10220 unless ``force`` (wrangler's rollback)."""
        history = self._history.get((account_id, name))
        if history is None or name not in container:
            raise errors.script_not_found()
        if body.get("strategy") != "percentage":
            raise _invalid('strategy must be "percentage".')
        wanted = body.get("versions")
        if not isinstance(wanted, list) or not 1 <= len(wanted) <= MAX_DEPLOYMENT_VERSIONS:
            raise _invalid("A deployment must name one or two versions.")
        known = {v.id: v for v in history.versions}
        split: list[dict[str, Any]] = []
        for item in wanted:
            if not isinstance(item, dict):
                raise _invalid("Each version must be an object with version_id and percentage.")
            version_id, percentage = item.get("version_id"), item.get("percentage")
            if version_id not in known:
                raise _invalid(f"Version {version_id} does not exist for Worker {name}.")
            if isinstance(percentage, bool) or not isinstance(percentage, int | float):
                raise _invalid("percentage must be a number.")
            if not 0 <= percentage <= 100:
                raise _invalid("Percentages must be between 0 and 100.")
            if any(s["version_id"] == version_id for s in split):
                raise _invalid(f"Version {version_id} is named twice.")
            split.append({"version_id": version_id, "percentage": float(percentage)})
        total = sum(s["percentage"] for s in split)
        if abs(total - 100) > PERCENT_EPSILON:
            raise _invalid(f"Percentages add up to {total:g}, but must total exactly 100.")
        serving_now = (
            {v["version_id"] for v in history.deployments[-1].versions}
            if history.deployments
            else set()
        )
        secrets_now = _secrets(container[name])
        for share in split:
            if force or share["version_id"] in serving_now:
                continue
            then = _secrets(known[share["version_id"]].snapshot)
            changed = sorted(
                n for n in set(then) | set(secrets_now) if then.get(n) != secrets_now.get(n)
            )
            if changed:
                raise ApiError(
                    400,
                    SECRETS_CHANGED,
                    f"Cannot deploy version {share['version_id']}: secrets have changed since it "
                    f"was deployed. The following secrets have changed: {', '.join(changed)}",
                )
        deployment = WorkerDeployment(
            id=str(uuid.uuid4()),
            created_on=now_iso(),
            source="api",
            versions=split,
            annotations=_annotations(body.get("annotations")),
        )
        history.deployments.append(deployment)
        # Ties go to the version listed first.
        serving = known[max(split, key=lambda s: s["percentage"])["version_id"]]
        if self.content_shows_newest_upload:
            serving = history.versions[-1]
        current = container[name]
        served = copy.deepcopy(serving.snapshot)
        # Secrets set since that version was uploaded stay set.
        secrets = [b for b in current.bindings if b.get("type") in SECRET_BINDING_TYPES]
        served.bindings = [b for b in served.bindings if b.get("type") not in SECRET_BINDING_TYPES]
        served.bindings += copy.deepcopy(secrets)
        served.tag, served.created_on = current.tag, current.created_on
        # Settings of the script, not of a version (wrangler: "non-versioned settings"), stay.
        served.tags, served.logpush = list(current.tags), current.logpush
        served.tail_consumers = copy.deepcopy(current.tail_consumers)
        served.observability = copy.deepcopy(current.observability)
        served.modified_on = now_iso()
        container[name] = served
        return deployment


def _secrets(script: Script) -> dict[str, Any]:
    return {
        str(b.get("name")): b.get("text")
        for b in script.bindings
        if b.get("type") in SECRET_BINDING_TYPES
    }


def _annotations(raw: Any) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict) or not all(isinstance(v, str) for v in raw.values()):
        raise errors.script_invalid("annotations must be an object of strings.")
    out = dict(raw)
    tag = out.get("workers/tag")
    if tag is not None and len(tag.encode()) > TAG_MAX_BYTES:
        raise errors.script_invalid(f"workers/tag is longer than {TAG_MAX_BYTES} bytes.")
    message = out.get("workers/message")
    if message is not None:
        out["workers/message"] = message.encode()[:MESSAGE_MAX_BYTES].decode(errors="ignore")
    return out


def _invalid(message: str) -> ApiError:
    # No public source gives the API's code for a refused deployment; 10001 is chosen.
    return errors.bad_request(message, code=10001)


# ---------------------------------------------------------------------------------- handlers
def _account_script(ctx: Ctx) -> tuple[dict[str, Script], Script]:
    container = ctx.state._scripts[ctx.params["account_id"]]
    script = container.get(ctx.params["script"])
    if script is None:
        raise errors.script_not_found()
    return container, script


def version_upload(ctx: Ctx) -> Response:
    """``POST .../versions``: validated like a script PUT, stored, not deployed."""
    from .app import _parse_upload, ok

    _account_script(ctx)
    metadata, modules = _parse_upload(ctx)
    store = ctx.state.versions
    if store.refuse_dispatch_namespace_uploads and any(
        isinstance(b, dict) and b.get("type") == "dispatch_namespace"
        for b in metadata.get("bindings") or []
    ):
        # cloudflare/workers-sdk#10712: a 500 for a dispatch_namespace binding.
        raise errors.internal_error()
    ctx.state._put_script(
        ctx.params["account_id"],
        None,
        ctx.params["script"],
        metadata,
        modules,
        bindings_inherit=ctx.q("bindings_inherit"),
        deploy=False,
    )
    version = store.versions(ctx.params["account_id"], ctx.params["script"])[0]
    return ok(version.to_upload_api())


def versions_list(ctx: Ctx) -> Response:
    """``GET .../versions``: newest first, in ``result.items``; ``deployable`` ignores paging."""
    from .app import _int_param, ok

    _account_script(ctx)
    items = [
        v.to_list_item()
        for v in ctx.state.versions.versions(ctx.params["account_id"], ctx.params["script"])
    ]
    if (ctx.q("deployable") or "").lower() == "true":
        return ok({"items": items})
    page = _int_param(ctx, "page", 1, 1, 1_000_000)
    per_page = _int_param(ctx, "per_page", 20, 1, 100)
    chunk = items[(page - 1) * per_page : page * per_page]
    info = {"page": page, "per_page": per_page, "count": len(chunk), "total_count": len(items)}
    return ok({"items": chunk}, result_info=info)


def version_get(ctx: Ctx) -> Response:
    """``GET .../versions/{version_id}``."""
    from .app import ok

    _account_script(ctx)
    for version in ctx.state.versions.versions(ctx.params["account_id"], ctx.params["script"]):
        if version.id == ctx.params["version_id"]:
            return ok(version.to_api())
    # 404 as for a missing Worker; the API's code for a missing version is not documented.
    raise ApiError(404, 10007, f"Version {ctx.params['version_id']} not found.")


def deployments_list(ctx: Ctx) -> Response:
    """``GET .../deployments``: newest (serving) first, in ``result.deployments``."""
    from .app import ok

    _account_script(ctx)
    found = ctx.state.versions.deployments(ctx.params["account_id"], ctx.params["script"])
    return ok({"deployments": [d.to_api() for d in found]})


def deployment_create(ctx: Ctx) -> Response:
    """``POST .../deployments`` (``?force=true`` deploys across changed secrets)."""
    from .app import ok

    container, _script = _account_script(ctx)
    deployment = ctx.state.versions.deploy(
        container,
        ctx.params["account_id"],
        ctx.params["script"],
        ctx.json_object(),
        force=(ctx.q("force") or "").lower() == "true",
    )
    return ok(deployment.to_api())


def routes(script_path: str) -> list[tuple[str, str, str | None, Handler]]:
    """The endpoint table rows, under ``script_path`` (``/accounts/{a}/workers/scripts/{s}``)."""
    return [
        ("POST", script_path + "/versions", "workers_scripts", version_upload),
        ("GET", script_path + "/versions", "workers_scripts", versions_list),
        ("GET", script_path + "/versions/{version_id}", "workers_scripts", version_get),
        ("GET", script_path + "/deployments", "workers_scripts", deployments_list),
        ("POST", script_path + "/deployments", "workers_scripts", deployment_create),
    ]


def version_override(headers: dict[str, str]) -> str | None:
    """The ``Cloudflare-Workers-Version-Overrides`` header of a recorded request, if any."""
    return headers.get(OVERRIDE_HEADER)
