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

The routes are planned and written by :mod:`code24ctl.ops.deploy_routes`.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import resources
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from code24ctl.cloudflare.client import (
    KV_TITLE_EXISTS,
    SCRIPT_NOT_FOUND,
    api_call,
    is_not_found,
)
from code24ctl.cloudflare.listing import numbered_pages
from code24ctl.cloudflare.modules import Module, content_type_for, sdk_files
from code24ctl.cloudflare.namespaces import find_namespace, namespace_missing
from code24ctl.cloudflare.outcome import write_checked
from code24ctl.cloudflare.ownership import managed_tags
from code24ctl.cloudflare.versions import release_annotations, version_id_from_put
from code24ctl.cloudflare.worker_code import (
    CARRIED_SETTINGS,
    WorkerCode,
    download_account_worker,
    setting_words,
)
from code24ctl.cloudflare.worker_diff import Difference, compare
from code24ctl.config import ResolvedConfig
from code24ctl.dispatch.table import compile_route_table
from code24ctl.errors import CloudflareAPIError, RouteConflict, RouteConflictError
from code24ctl.ops.changes import ChangeLog
from code24ctl.ops.deploy_routes import RouteChange, apply_route, plan_routes
from code24ctl.ops.plan import PlannedChange

if TYPE_CHECKING:
    from code24ctl.cloudflare.session import CloudflareSession

MAIN_MODULE = "dispatcher.js"
DISPATCHER_BINDING = "DISPATCHER"
METADATA_BINDING = "METADATA"
ROUTE_TABLE_BINDING = "ROUTE_TABLE"
#: The Workers Analytics Engine dataset dispatcher.js writes one data point per request to.
ANALYTICS_BINDING = "ANALYTICS"
#: The version metadata binding ({id, tag, timestamp}) whose id dispatcher.js sends in
#: X-Code24-Dispatcher-Version (docs/dispatch.md, D6; wrangler's ``[version_metadata]``).
VERSION_METADATA_BINDING = "CF_VERSION_METADATA"
# Shown in a dry run's metadata where the KV namespace id will go once it is created.
KV_ID_PLACEHOLDER = "<created on deploy>"

KVAction = Literal["found", "created", "would create"]


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
    # The version the upload created (and deployed at 100%); None when the API did not say.
    version_id: str | None = None

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
                    note=None if self.deployed else self._new_settings(),
                )
            )
        for route in self.routes:
            change = route.planned_change(self.dispatcher)
            if change is not None:
                found.append(change)
        return found

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

    def counts(self) -> dict[str, int]:
        """The ``summary`` of ``deploy --json``: the routes by what deploy does to them."""
        actions = ("create", "update", "delete", "unchanged", "conflict")
        return {f"routes_{a}": sum(route.action == a for route in self.routes) for a in actions}


# --------------------------------------------------------------------------------------------
# The dispatcher code and its metadata (pure)


def dispatcher_module() -> Module:
    """The packaged JavaScript dispatcher, as the one module of the upload."""

    content = (resources.files("code24ctl.dispatch") / MAIN_MODULE).read_bytes()
    return Module(name=MAIN_MODULE, content=content, content_type=content_type_for(MAIN_MODULE))


def plain_text_vars(resolved: ResolvedConfig) -> dict[str, str]:
    """The dispatcher's plain-text vars: ENVIRONMENT and PLATFORM_NAME unless set, then vars."""
    values = {"ENVIRONMENT": resolved.env_name, "PLATFORM_NAME": resolved.config.platform}
    values.update(resolved.environment.vars)
    return values


def dispatcher_bindings(
    resolved: ResolvedConfig, kv_namespace_id: str | None
) -> list[dict[str, Any]]:
    """The bindings of the dispatcher upload, in a fixed order.

    ``DISPATCHER`` (dispatch namespace, with the outbound Worker when configured),
    ``METADATA`` (KV, when the environment names one), the vars as plain text, and the route
    table as the ``json`` binding ``ROUTE_TABLE``, ``CF_VERSION_METADATA`` (the version the
    answers name), then ``ANALYTICS`` (an Analytics Engine
    dataset, when the environment configures ``analytics``).
    """
    environment = resolved.require_cloudflare()
    dispatcher: dict[str, Any] = {
        "type": "dispatch_namespace",
        "name": DISPATCHER_BINDING,
        "namespace": resolved.namespace(),
    }
    if environment.outbound is not None:
        dispatcher["outbound"] = {
            "worker": {"service": environment.outbound.worker},
            "params": [{"name": param} for param in environment.outbound.params],
        }
    bindings = [dispatcher]
    if environment.kv_namespace:
        bindings.append(
            {
                "type": "kv_namespace",
                "name": METADATA_BINDING,
                "namespace_id": kv_namespace_id or KV_ID_PLACEHOLDER,
            }
        )
    for name, text in plain_text_vars(resolved).items():
        bindings.append({"type": "plain_text", "name": name, "text": text})
    bindings.append(
        {
            "type": "json",
            "name": ROUTE_TABLE_BINDING,
            "json": compile_route_table(resolved.config, resolved.env_name),
        }
    )
    bindings.append({"type": "version_metadata", "name": VERSION_METADATA_BINDING})
    if environment.analytics is not None:
        # As wrangler uploads an analytics_engine_datasets entry.
        bindings.append(
            {
                "type": "analytics_engine",
                "name": ANALYTICS_BINDING,
                "dataset": environment.analytics.dataset,
            }
        )
    return bindings


def dispatcher_settings(resolved: ResolvedConfig) -> dict[str, Any]:
    """The dispatcher's own settings from the config: the platform-wide ``observability``
    (Workers Logs), so that ``logs --request-id`` finds the dispatcher's line beside the
    workers'. Unset in the config: none (the deployed setting stays as it is)."""
    observability = resolved.config.observability
    return {"observability": observability.model_dump()} if observability is not None else {}


def dispatcher_code(resolved: ResolvedConfig, kv_namespace_id: str | None) -> WorkerCode:
    """The dispatcher upload: the packaged ``dispatcher.js``, the config's compatibility date
    and flags, :func:`dispatcher_bindings` and :func:`dispatcher_settings` (a version upload
    sends the settings through script settings: :func:`~code24ctl.cloudflare.versions.
    version_metadata`)."""
    return WorkerCode(
        source=f"the packaged {MAIN_MODULE}",
        modules=(dispatcher_module(),),
        main_module=MAIN_MODULE,
        compatibility_date=resolved.config.compatibility_date,
        compatibility_flags=tuple(resolved.config.compatibility_flags),
        bindings=tuple(dispatcher_bindings(resolved, kv_namespace_id)),
        tags=tuple(managed_tags(resolved, "role:dispatcher")),
        settings=dispatcher_settings(resolved),
    )


def build_metadata(resolved: ResolvedConfig, kv_namespace_id: str | None) -> dict[str, Any]:
    """The ``metadata`` part of the dispatcher upload (never holds a secret)."""
    return dispatcher_code(resolved, kv_namespace_id).metadata()


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
) -> DeployPlan:
    """Everything deploy would do, from reads only (this is ``--dry-run``).

    A missing namespace or a conflicting route is in the plan, not raised: a dry run previews a
    new environment too, and :func:`execute_deploy` refuses such a plan before writing.
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
    return DeployPlan(
        environment=resolved.env_name,
        dispatcher=dispatcher,
        namespace=namespace,
        namespace_exists=exists,
        metadata=code.metadata(),
        modules=[_summary(module) for module in code.modules],
        kv=kv,
        dispatcher_action="unchanged" if unchanged else "upload",
        deployed=deployed is not None,
        differences=differences,
        routes=routes,
    )


def preview(plan: DeployPlan) -> DeployReport:
    """The report of a dry run: the plan, nothing written."""
    return DeployReport(**plan.model_dump(), dry_run=True)


def execute_deploy(
    session: CloudflareSession,
    resolved: ResolvedConfig,
    plan: DeployPlan,
    *,
    log: ChangeLog | None = None,
) -> DeployReport:
    """Carry a plan out: KV namespace, dispatcher upload, routes, in that order.

    Refuses before writing anything: a missing namespace (:class:`CloudflareAPIError` 100119)
    and route conflicts (:class:`RouteConflictError`; plan with ``force`` to take them over).
    Each write is recorded in ``log`` (a fresh one by default); an error or interruption
    leaves carrying what was written before it.
    """
    if not plan.namespace_exists:
        raise namespace_missing(
            plan.namespace, resolved.env_name, why="; the dispatcher cannot be uploaded without it"
        )
    if plan.conflicts:
        raise plan.conflict_error()
    result = DeployReport(**plan.model_copy(deep=True).model_dump(), dry_run=False)
    with (log or ChangeLog()).carried() as log:
        if result.kv is not None and result.kv.id is None:
            result.kv.id = create_kv_namespace(session, result.kv.title)
            result.kv.action = "created"
            log.record("KV namespace", result.kv.title, "created", f"id {result.kv.id}")
        if result.dispatcher_action == "upload":
            code = dispatcher_code(resolved, result.kv.id if result.kv else None)
            result.metadata = code.metadata()
            result.version_id = upload_dispatcher(session, result.dispatcher, code)
            result.uploaded = True
            version = result.version_id or "(id not reported by the API)"
            log.record(
                "dispatcher", result.dispatcher, "uploaded", f"version {version} live at 100%"
            )
        for route in result.routes:
            apply_route(session, route, result.dispatcher)
            if route.applied:
                log.record("route", route.pattern, _ROUTE_DONE[route.action], route.zone)
    return result


_ROUTE_DONE = {"create": "created", "update": "taken over", "delete": "deleted"}


def upload_dispatcher(session: CloudflareSession, name: str, code: WorkerCode) -> str | None:
    """``PUT /accounts/{a}/workers/scripts/{name}``: the metadata part plus the modules.

    The version it creates is annotated like every code24ctl upload
    (:func:`~code24ctl.cloudflare.versions.release_annotations`); returns its id, or None when
    the answer does not carry one.
    """

    metadata = code.metadata()
    metadata["annotations"] = release_annotations(metadata["bindings"])
    with api_call(f"upload dispatcher Worker {name}"):
        answer = session.client.workers.scripts.update(
            name,
            account_id=session.account_id,
            metadata=metadata,  # type: ignore[arg-type]  # plain JSON, SDK TypedDict
            files=sdk_files(code.modules),
        )
    return version_id_from_put(answer)


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
