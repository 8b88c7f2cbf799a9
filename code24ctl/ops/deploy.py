"""Deploy the dispatcher Worker: its upload metadata, the KV it binds, and the zone routes.

Two steps, so a dry run, ``apply`` and a release share one engine:

* :func:`plan_deploy` reads everything (namespace, KV, zones, routes, what is deployed now) and
  returns a :class:`DeployPlan`: the upload, the differences from what is deployed, the route
  changes. It never writes and never raises for what it finds (a missing namespace, a route
  owned by another Worker are in the plan).
* :func:`execute_deploy` carries a plan out: it refuses (before writing anything) a plan whose
  namespace is missing or whose routes conflict (:class:`~code24ctl.errors.RouteConflictError`),
  then creates the KV namespace if missing, uploads the dispatcher (skipped when what is
  deployed already matches), creates or takes over routes. It returns a :class:`DeployReport`.

The dispatcher upload over a serving one is a version probed through the version override at
0% before it takes 100% (:mod:`code24ctl.ops.deploy_probed`); the routes are planned and
written by :mod:`code24ctl.ops.deploy_routes`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from code24ctl.cloudflare.client import (
    KV_TITLE_EXISTS,
    SCRIPT_NOT_FOUND,
    api_call,
    is_not_found,
)
from code24ctl.cloudflare.listing import numbered_pages
from code24ctl.cloudflare.modules import Module
from code24ctl.cloudflare.namespaces import find_namespace, namespace_missing
from code24ctl.cloudflare.outcome import write_checked
from code24ctl.cloudflare.versions import (
    DeploymentInfo,
    current_deployment,
    get_version,
    list_versions,
    release_tag,
)
from code24ctl.cloudflare.worker_code import (
    CARRIED_SETTINGS,
    WorkerCode,
    download_account_worker,
    setting_words,
)
from code24ctl.cloudflare.worker_diff import Difference, compare
from code24ctl.config import ResolvedConfig
from code24ctl.constants import DEFAULT_VERSION_WAIT_S
from code24ctl.errors import CloudflareAPIError, RouteConflict, RouteConflictError
from code24ctl.ops.changes import ChangeLog
from code24ctl.ops.deploy_routes import RouteChange, apply_route, plan_routes
from code24ctl.ops.dispatcher_worker import dispatcher_code, dispatcher_module
from code24ctl.ops.plan import PlannedChange
from code24ctl.probe.plan import ProbeOptions
from code24ctl.probe.report import ProbeReport

if TYPE_CHECKING:
    from code24ctl.cloudflare.session import CloudflareSession


KVAction = Literal["found", "created", "would create"]
#: Why an upload took traffic without a probe (``unprobed`` in ``deploy --json``).
FIRST_DEPLOY = "nothing served before: not probed"
UNPROBED = "--unprobed: the version took traffic without a probe"


@dataclass(frozen=True)
class Probing:
    """How a plain deploy puts a new dispatcher version in front of the workers: probed
    through the version override at 0% (waiting up to ``wait_s`` for it to apply) before
    100%, or, ``unprobed``, by script PUT live at 100% at once. ``runner`` and ``say``: the
    probe to run (tests) and where step lines go."""

    unprobed: bool = False
    wait_s: float = DEFAULT_VERSION_WAIT_S
    options: ProbeOptions | None = None
    runner: Callable[..., ProbeReport] | None = None
    say: Callable[[str], None] | None = None


class ModuleSummary(BaseModel):
    """One uploaded module, described without its bytes."""

    name: str
    content_type: str
    size: int
    sha256: str


class KVResolution(BaseModel):
    """The METADATA KV namespace: found by title, created, or to be created (dry run)."""

    title: str
    id: str | None
    action: KVAction


class DeployPlan(BaseModel):
    """Everything deploy would do, from reads only (``deploy --dry-run --json`` prints it).

    ``differences`` is how the deployed dispatcher differs from the upload (empty when nothing
    is deployed yet, or nothing differs). ``namespace_exists`` False: the upload would fail
    (100119) until the namespace exists.
    """

    environment: str
    dispatcher: str
    namespace: str
    namespace_exists: bool = True
    metadata: dict[str, Any]
    modules: list[ModuleSummary]
    kv: KVResolution | None
    dispatcher_action: Literal["upload", "unchanged"]
    deployed: bool = False  # whether a dispatcher is deployed now
    differences: list[Difference] = Field(default_factory=list)
    routes: list[RouteChange]
    # The version the upload created; None when the API did not say.
    version_id: str | None = None
    # --unprobed: the upload goes live at 100% by script PUT, without a probe.
    unprobed_upload: bool = False
    # Why the dispatcher is uploaded though its content matches: the newest version is not
    # the one serving 100% (a probe failed), so the content GET is not trusted.
    reupload: str | None = None

    @property
    def conflicts(self) -> list[RouteChange]:
        """Routes owned by another Worker that deploy would not take over."""
        return [route for route in self.routes if route.action == "conflict"]

    def conflict_error(self) -> RouteConflictError:
        """The error for this plan's route conflicts (exit 2), naming each and its owner."""
        return RouteConflictError(
            self.dispatcher,
            [RouteConflict(r.pattern, r.zone, r.owner) for r in self.conflicts],
        )

    def changes(self) -> list[PlannedChange]:
        """What carrying the plan out writes, as ``+`` / ``~`` / ``-`` changes."""
        found: list[PlannedChange] = []
        if self.kv is not None and self.kv.id is None:
            found.append(PlannedChange(action="create", kind="KV namespace", name=self.kv.title))
        if self.dispatcher_action == "upload":
            found.append(
                PlannedChange(
                    action="update" if self.deployed else "create",
                    kind="dispatcher",
                    name=self.dispatcher,
                    fields=list(self.differences),
                    note=self.upload_note(),
                )
            )
        for route in self.routes:
            change = route.planned_change(self.dispatcher)
            if change is not None:
                found.append(change)
        return found

    def upload_note(self) -> str:
        """How the dispatcher upload reaches traffic: probed first, or not, and why."""
        if not self.deployed:
            words = [self._new_settings(), "nothing serves yet: live at 100%, not probed"]
            return ", ".join(w for w in words if w)
        if self.unprobed_upload:
            how = "--unprobed: live at 100% at once, not probed"
        else:
            how = "a new version, probed at 0% through the version override before 100%"
        return f"{self.reupload}; {how}" if self.reupload else how

    def _new_settings(self) -> str | None:
        # A first upload has no differences to list; its settings (Workers Logs) are named,
        # as bind names a copy's.
        words = [
            setting_words(key, self.metadata[key])
            for key in CARRIED_SETTINGS
            if key in self.metadata
        ]
        return ", ".join(words) or None

    def problems(self) -> list[str]:
        """What stops the plan from being carried out, one line each."""
        found = []
        if not self.namespace_exists:
            found.append(
                f"dispatch namespace {self.namespace} does not exist; "
                "the dispatcher cannot be uploaded without it"
            )
        found += [
            f"route {r.pattern} is routed to {r.owner or 'no Worker'} "
            "(rerun with --force to take it over)"
            for r in self.conflicts
        ]
        return found


class DeployReport(DeployPlan):
    """The outcome of ``deploy`` (``--json`` prints this); a dry run's is its plan."""

    dry_run: bool
    uploaded: bool = False
    # False: the probed upload failed and the deployment was put back (``error`` says why).
    ok: bool = True
    # The new version passed the probe through the override before it took 100%.
    probed: bool = False
    # The probe through the override of the new version (None: not probed, see ``unprobed``).
    probe: ProbeReport | None = None
    # Why the upload took traffic without a probe (first deploy, --unprobed); None otherwise.
    unprobed: str | None = None
    # The deployment before the probed upload, and after it (or after putting it back).
    before: DeploymentInfo | None = None
    after: DeploymentInfo | None = None
    restored: bool = False
    put_back_failed: bool = False
    error: str | None = None

    def upload_words(self) -> str:
        """What happened to the dispatcher, in a few words (apply's deploy step)."""
        if not self.uploaded:
            return "unchanged"
        if self.probed:
            return f"uploaded, version {self.version_id} probed through the override, at 100%"
        return f"uploaded ({self.unprobed})" if self.unprobed else "uploaded"

    def counts(self) -> dict[str, int]:
        """The ``summary`` of ``deploy --json``: the routes by what deploy does to them."""
        actions = ("create", "update", "delete", "unchanged", "conflict")
        return {f"routes_{a}": sum(route.action == a for route in self.routes) for a in actions}


# --------------------------------------------------------------------------------------------
# Reads


def find_kv_namespace(session: CloudflareSession, title: str) -> str | None:
    """The id of the account's KV namespace titled ``title``, or None."""
    with api_call("list KV namespaces"):
        for namespace in numbered_pages(
            lambda page: session.client.kv.namespaces.list(
                account_id=session.account_id, page=page, per_page=100
            ),
            "list KV namespaces",
            pages=session.page_read,
        ):
            if namespace.title == title:
                return str(namespace.id)
    return None


def create_kv_namespace(session: CloudflareSession, title: str) -> str:
    """Create the KV namespace ``title``; one created meanwhile by someone else is reused."""

    def create() -> str:
        with api_call(f"create KV namespace {title}"):
            created = session.client.kv.namespaces.create(
                account_id=session.account_id, title=title
            )
        if created is None or not created.id:
            existing = find_kv_namespace(session, title)
            if existing is None:
                raise CloudflareAPIError(f"create KV namespace {title}: the API returned no id")
            return existing
        return created.id

    try:
        return write_checked(
            f"create KV namespace {title}",
            create,
            lambda: find_kv_namespace(session, title),
            shows="code24ctl deploy --dry-run",
        )
    except CloudflareAPIError as exc:
        if exc.code == KV_TITLE_EXISTS:
            existing = find_kv_namespace(session, title)
            if existing is not None:
                return existing
        raise


def deployed_dispatcher(session: CloudflareSession, name: str) -> WorkerCode | None:
    """What is deployed as the dispatcher (modules, entry, settings), or None if nothing is."""
    try:
        return download_account_worker(session, name)
    except CloudflareAPIError as exc:
        if is_not_found(exc, SCRIPT_NOT_FOUND):
            return None
        raise


def dispatcher_differences(
    deployed: WorkerCode,
    expected: WorkerCode | Mapping[str, Any],
    module: Module | None = None,
) -> list[Difference]:
    """How the deployed dispatcher differs from what deploy uploads (empty: the same).

    ``expected`` is :func:`dispatcher_code`, or an upload ``metadata`` dict (from
    :func:`build_metadata`) with ``module`` (default: the packaged dispatcher.js). Secret
    bindings are not compared: deploy keeps them (``keep_bindings``) and never sets any.
    """
    if not isinstance(expected, WorkerCode):
        expected = _code_from_metadata(expected, module or dispatcher_module())
    return compare(expected, deployed)


def _code_from_metadata(metadata: Mapping[str, Any], module: Module) -> WorkerCode:
    return WorkerCode(
        source=f"the packaged {module.name}",
        modules=(module,),
        main_module=metadata["main_module"],
        compatibility_date=metadata.get("compatibility_date"),
        compatibility_flags=tuple(metadata.get("compatibility_flags") or ()),
        bindings=tuple(metadata["bindings"]),
        settings={key: metadata[key] for key in CARRIED_SETTINGS if key in metadata},
    )


# --------------------------------------------------------------------------------------------
# Plan and run


def plan_deploy(
    session: CloudflareSession,
    resolved: ResolvedConfig,
    *,
    force: bool = False,
    unprobed: bool = False,
) -> DeployPlan:
    """Everything deploy would do, from reads only (this is ``--dry-run``).

    A missing namespace or a conflicting route is in the plan, not raised: a dry run previews a
    new environment too, and :func:`execute_deploy` refuses such a plan before writing.
    ``unprobed``: the upload is planned as a script PUT live at once (``deploy --unprobed``).
    """
    environment = resolved.require_cloudflare()
    namespace = resolved.namespace()
    exists = find_namespace(session, namespace) is not None
    kv: KVResolution | None = None
    if environment.kv_namespace:
        kv_id = find_kv_namespace(session, environment.kv_namespace)
        kv = KVResolution(
            title=environment.kv_namespace,
            id=kv_id,
            action="found" if kv_id else "would create",
        )
    code = dispatcher_code(resolved, kv.id if kv else None)
    dispatcher = resolved.dispatcher()
    routes = plan_routes(
        session, environment.routes, dispatcher, force=force, zone=environment.zone
    )
    deployed = deployed_dispatcher(session, dispatcher)
    differences = compare(code, deployed) if deployed is not None else []
    # Without the KV namespace its id is a placeholder: that upload always differs.
    unchanged = deployed is not None and not differences and (kv is None or kv.id is not None)
    wanted_tag = release_tag(code.metadata()["bindings"])
    reupload = not_serving_newest(session, dispatcher, wanted_tag) if unchanged else None
    return DeployPlan(
        environment=resolved.env_name,
        dispatcher=dispatcher,
        namespace=namespace,
        namespace_exists=exists,
        metadata=code.metadata(),
        modules=[_summary(module) for module in code.modules],
        kv=kv,
        dispatcher_action="unchanged" if unchanged and reupload is None else "upload",
        deployed=deployed is not None,
        differences=differences,
        routes=routes,
        unprobed_upload=unprobed,
        reupload=reupload,
    )


def not_serving_newest(session: CloudflareSession, dispatcher: str, wanted_tag: str) -> str | None:
    """Why to upload again though the content matches, or None. After a failed probe the
    newest version takes no traffic; whether the content GET shows it or the one serving is
    not settled, so the comparison is trusted only when the newest version serves 100%, or
    when the tags settle it: the serving version is tagged with this upload's bindings and the
    newest is not (the content the GET showed, which matched, cannot be the newest's: after a
    rollback to the config's own version, nothing is uploaded again). A split is left to
    promote and rollback (a plain deploy over it is refused)."""
    now = current_deployment(session, dispatcher)
    serving = now.sole_version if now is not None else None
    if serving is None:
        return None
    newest = list_versions(session, dispatcher, 1)
    if not newest or newest[0].id == serving:
        return None
    # Only a newest version known to carry other bindings (a code24ctl tag with another
    # config hash) cannot be what the content GET showed; one with no tag, a foreign tag or
    # this config hash (another code24ctl, a compatibility date change) proves nothing.
    wanted_hash = wanted_tag.rsplit("config/", 1)[-1]
    if (
        newest[0].config_hash is not None
        and newest[0].config_hash != wanted_hash
        and get_version(session, dispatcher, serving).tag == wanted_tag
    ):
        return None
    return f"the newest version {newest[0].id} does not serve (version {serving} does)"


def preview(plan: DeployPlan) -> DeployReport:
    """The report of a dry run: the plan, nothing written."""
    return DeployReport(**plan.model_dump(), dry_run=True)


def execute_deploy(
    session: CloudflareSession,
    resolved: ResolvedConfig,
    plan: DeployPlan,
    *,
    log: ChangeLog | None = None,
    probing: Probing | None = None,
) -> DeployReport:
    """Carry a plan out: KV namespace, dispatcher upload, routes, in that order.

    Refuses before writing anything: a missing namespace (:class:`CloudflareAPIError` 100119),
    route conflicts (:class:`RouteConflictError`; plan with ``force`` to take them over) and a
    probed upload the config cannot probe (no base_url: exit 2). Over a serving dispatcher the
    upload is probed at 0% through the version override before 100%
    (:mod:`code24ctl.ops.deploy_probed`, ``probing``); a failed probe puts the deployment back
    and returns ``ok`` False with the routes untouched. Each write is recorded in ``log`` (a
    fresh one by default); an error or interruption leaves carrying what was written before it.
    """
    from code24ctl.ops import deploy_probed

    probing = probing or Probing(unprobed=plan.unprobed_upload)
    if not plan.namespace_exists:
        raise namespace_missing(
            plan.namespace, resolved.env_name, why="; the dispatcher cannot be uploaded without it"
        )
    if plan.conflicts:
        raise plan.conflict_error()
    if needs_probe(plan, probing):
        deploy_probed.check_probe_settings(resolved)
    result = DeployReport(**plan.model_copy(deep=True).model_dump(), dry_run=False)
    with (log or ChangeLog()).carried() as log:
        if result.kv is not None and result.kv.id is None:
            result.kv.id = create_kv_namespace(session, result.kv.title)
            result.kv.action = "created"
            log.record("KV namespace", result.kv.title, "created", f"id {result.kv.id}")
        if result.dispatcher_action == "upload":
            code = dispatcher_code(resolved, result.kv.id if result.kv else None)
            result.metadata = code.metadata()
            deploy_probed.upload_step(session, resolved, result, code, probing, log)
            if not result.ok:
                return result
        for route in result.routes:
            apply_route(session, route, result.dispatcher)
            if route.applied:
                log.record("route", route.pattern, _ROUTE_DONE[route.action], route.zone)
    return result


_ROUTE_DONE = {"create": "created", "update": "taken over", "delete": "deleted"}


def needs_probe(plan: DeployPlan, probing: Probing) -> bool:
    """Whether carrying ``plan`` out probes a new version (so needs a base_url to probe)."""
    return plan.dispatcher_action == "upload" and plan.deployed and not probing.unprobed


def route_zones(result: DeployPlan) -> list[tuple[str, str]]:
    """``(pattern, zone name)`` of every configured route, for wrangler.toml."""
    return [(route.pattern, route.zone) for route in result.routes if route.action != "delete"]


def _summary(module: Module) -> ModuleSummary:
    return ModuleSummary(
        name=module.name,
        content_type=module.content_type,
        size=len(module.content),
        sha256=module.sha256,
    )
