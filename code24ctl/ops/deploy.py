"""Deploy the dispatcher Worker: its upload metadata, the KV it binds, and the zone routes.

Everything is read first (namespace, KV, zones, routes, what is deployed now), so a deploy that
cannot finish (no namespace, no zone, a route owned by another Worker) fails before it writes
anything. Then, in order: create the KV namespace if missing, upload the dispatcher (skipped when
what is deployed already matches), create or take over routes. ``dry_run`` stops after the reads.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel

from code24ctl.cloudflare.client import (
    KV_TITLE_EXISTS,
    SCRIPT_NOT_FOUND,
    api_call,
    is_not_found,
)
from code24ctl.cloudflare.modules import Module, content_type_for, sdk_files
from code24ctl.cloudflare.namespaces import find_namespace, require_namespace
from code24ctl.cloudflare.scripts import WorkerCode, compare, download_account_worker
from code24ctl.config import ResolvedConfig
from code24ctl.dispatch.table import compile_route_table
from code24ctl.errors import CloudflareAPIError

if TYPE_CHECKING:
    from cloudflare import Cloudflare

MAIN_MODULE = "dispatcher.js"
DISPATCHER_BINDING = "DISPATCHER"
METADATA_BINDING = "METADATA"
ROUTE_TABLE_BINDING = "ROUTE_TABLE"
# Shown in a dry run's metadata where the KV namespace id will go once it is created.
KV_ID_PLACEHOLDER = "<created on deploy>"

RouteAction = Literal["create", "unchanged", "update", "conflict"]
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


class RouteChange(BaseModel):
    """What deploy does (or would do) about one route pattern.

    ``action``: ``create`` (missing), ``unchanged`` (already routed to the dispatcher),
    ``update`` (owned by another Worker, taken over with --force), ``conflict`` (owned by
    another Worker and not forced; ``owner`` names it). ``applied`` says whether it was written.
    """

    pattern: str
    zone: str
    zone_id: str
    action: RouteAction
    owner: str | None = None
    route_id: str | None = None
    applied: bool = False


class DeployResult(BaseModel):
    """The outcome of ``deploy`` (``--json`` prints this)."""

    environment: str
    dispatcher: str
    namespace: str
    dry_run: bool
    metadata: dict[str, Any]
    modules: list[ModuleSummary]
    kv: KVResolution | None
    dispatcher_action: Literal["upload", "unchanged"]
    uploaded: bool
    routes: list[RouteChange]
    # False only in a dry run: the upload would fail (100119) until the namespace exists.
    namespace_exists: bool = True
    # The version the upload created (and deployed at 100%); None when the API did not say.
    version_id: str | None = None

    @property
    def conflicts(self) -> list[RouteChange]:
        """Routes owned by another Worker that deploy did not take over."""
        return [route for route in self.routes if route.action == "conflict"]


@dataclass(frozen=True)
class _ZoneRef:
    name: str
    id: str


# --------------------------------------------------------------------------------------------
# The dispatcher code and its metadata (pure)


def dispatcher_module() -> Module:
    """The packaged JavaScript dispatcher, as the one module of the upload."""
    from importlib import resources

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
    table as the ``json`` binding ``ROUTE_TABLE``.
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
        {"type": "json", "name": ROUTE_TABLE_BINDING, "json": compile_route_table(resolved.config)}
    )
    return bindings


def dispatcher_code(resolved: ResolvedConfig, kv_namespace_id: str | None) -> WorkerCode:
    """The dispatcher upload: the packaged ``dispatcher.js``, the config's compatibility date
    and flags, and :func:`dispatcher_bindings`."""
    return WorkerCode(
        source=f"the packaged {MAIN_MODULE}",
        modules=(dispatcher_module(),),
        main_module=MAIN_MODULE,
        compatibility_date=resolved.config.compatibility_date,
        compatibility_flags=tuple(resolved.config.compatibility_flags),
        bindings=tuple(dispatcher_bindings(resolved, kv_namespace_id)),
    )


def build_metadata(resolved: ResolvedConfig, kv_namespace_id: str | None) -> dict[str, Any]:
    """The ``metadata`` part of the dispatcher upload (never holds a secret)."""
    return dispatcher_code(resolved, kv_namespace_id).metadata()


def route_host(pattern: str) -> str:
    """The host of a route pattern, without a leading ``*`` / ``*.`` wildcard."""
    host = pattern.split("/", 1)[0].lower()
    host = host.removeprefix("*").removeprefix(".")
    return host.split(":", 1)[0]


def zone_candidates(host: str) -> list[str]:
    """Zone names to try for a host, dropping labels from the left (never a bare TLD)."""
    labels = host.split(".")
    return [".".join(labels[i:]) for i in range(len(labels) - 1)] or [host]


# --------------------------------------------------------------------------------------------
# Reads


def find_kv_namespace(client: Cloudflare, account_id: str, title: str) -> str | None:
    """The id of the account's KV namespace titled ``title``, or None."""
    with api_call("list KV namespaces"):
        for namespace in client.kv.namespaces.list(account_id=account_id, per_page=100):
            if namespace.title == title:
                return namespace.id
    return None


def create_kv_namespace(client: Cloudflare, account_id: str, title: str) -> str:
    """Create the KV namespace ``title``; one created meanwhile by someone else is reused."""
    try:
        with api_call(f"create KV namespace {title}"):
            created = client.kv.namespaces.create(account_id=account_id, title=title)
    except CloudflareAPIError as exc:
        if exc.code == KV_TITLE_EXISTS:
            existing = find_kv_namespace(client, account_id, title)
            if existing is not None:
                return existing
        raise
    if created is None or not created.id:
        existing = find_kv_namespace(client, account_id, title)
        if existing is None:
            raise CloudflareAPIError(f"create KV namespace {title}: the API returned no id")
        return existing
    return created.id


class ZoneResolver:
    """Finds the zone of each route host (``GET /zones?name=``), one lookup per name."""

    def __init__(self, client: Cloudflare, preferred: str | None = None) -> None:
        self._client = client
        self._preferred = preferred.lower() if preferred else None
        self._cache: dict[str, str | None] = {}

    def zone_id(self, name: str) -> str | None:
        """The id of the zone called exactly ``name``, or None."""
        if name not in self._cache:
            with api_call(f"look up zone {name}"):
                # A name filter matches at most one zone: the first page is all there is.
                page = self._client.zones.list(name=name)
                found = [zone.id for zone in page.result if zone.name == name]
            self._cache[name] = found[0] if found else None
        return self._cache[name]

    def for_pattern(self, pattern: str) -> _ZoneRef:
        """The zone a route pattern belongs to; raises when the account has none."""
        host = route_host(pattern)
        names = zone_candidates(host)
        preferred = self._preferred
        if preferred and (host == preferred or host.endswith("." + preferred)):
            names = [preferred] + [name for name in names if name != preferred]
        for name in names:
            zone_id = self.zone_id(name)
            if zone_id is not None:
                return _ZoneRef(name=name, id=zone_id)
        raise CloudflareAPIError(
            f"no zone on this account for route {pattern} (tried {', '.join(names)})",
            hint="add the zone to the account, or fix `routes`/`zone` of the environment "
            "in namespaces.yaml",
        )


def list_routes(client: Cloudflare, zone: _ZoneRef) -> list[tuple[str, str, str | None]]:
    """A zone's Worker routes as ``(id, pattern, script)``."""
    with api_call(f"list Worker routes of zone {zone.name}"):
        return [(r.id, r.pattern, r.script) for r in client.workers.routes.list(zone_id=zone.id)]


def plan_routes(
    client: Cloudflare,
    patterns: Iterable[str],
    dispatcher: str,
    *,
    force: bool,
    zone: str | None = None,
) -> list[RouteChange]:
    """Compare the configured patterns with the zones' routes (reads only)."""
    resolver = ZoneResolver(client, zone)
    existing: dict[str, list[tuple[str, str, str | None]]] = {}
    changes: list[RouteChange] = []
    for pattern in patterns:
        ref = resolver.for_pattern(pattern)
        if ref.id not in existing:
            existing[ref.id] = list_routes(client, ref)
        match = next((r for r in existing[ref.id] if r[1] == pattern), None)
        if match is None:
            action: RouteAction = "create"
            owner = route_id = None
        else:
            route_id, owner = match[0], match[2]
            action = "unchanged" if owner == dispatcher else "update" if force else "conflict"
        changes.append(
            RouteChange(
                pattern=pattern,
                zone=ref.name,
                zone_id=ref.id,
                action=action,
                owner=owner,
                route_id=route_id,
            )
        )
    return changes


def deployed_dispatcher(client: Cloudflare, account_id: str, name: str) -> WorkerCode | None:
    """What is deployed as the dispatcher (modules, entry, settings), or None if nothing is."""
    try:
        return download_account_worker(client, account_id, name)
    except CloudflareAPIError as exc:
        if is_not_found(exc, SCRIPT_NOT_FOUND):
            return None
        raise


def dispatcher_differences(
    deployed: WorkerCode,
    expected: WorkerCode | Mapping[str, Any],
    module: Module | None = None,
) -> list[str]:
    """How the deployed dispatcher differs from what deploy uploads (empty: the same).

    ``expected`` is :func:`dispatcher_code`, or an upload ``metadata`` dict (from
    :func:`build_metadata`) with ``module`` (default: the packaged dispatcher.js). One sentence
    per difference; code differences start with ``code differs``. Secret bindings are not
    compared: deploy keeps them (``keep_bindings``) and never sets any.
    """
    if not isinstance(expected, WorkerCode):
        expected = _code_from_metadata(expected, module or dispatcher_module())
    return [found.detail for found in compare(expected, deployed)]


def _code_from_metadata(metadata: Mapping[str, Any], module: Module) -> WorkerCode:
    return WorkerCode(
        source=f"the packaged {module.name}",
        modules=(module,),
        main_module=metadata["main_module"],
        compatibility_date=metadata.get("compatibility_date"),
        compatibility_flags=tuple(metadata.get("compatibility_flags") or ()),
        bindings=tuple(metadata["bindings"]),
    )


# --------------------------------------------------------------------------------------------
# Plan and run


def plan_deploy(
    client: Cloudflare,
    account_id: str,
    resolved: ResolvedConfig,
    *,
    force: bool = False,
    assume_namespace: bool = False,
) -> DeployResult:
    """Everything deploy would do, from reads only (this is ``--dry-run``).

    ``assume_namespace`` skips the namespace pre-flight (``apply`` creates it first).
    """
    environment = resolved.require_cloudflare()
    if not assume_namespace:
        require_namespace(
            client,
            account_id,
            resolved.namespace(),
            resolved.env_name,
            why="; the dispatcher cannot be uploaded without it",
        )
    kv: KVResolution | None = None
    if environment.kv_namespace:
        kv_id = find_kv_namespace(client, account_id, environment.kv_namespace)
        kv = KVResolution(
            title=environment.kv_namespace,
            id=kv_id,
            action="found" if kv_id else "would create",
        )
    code = dispatcher_code(resolved, kv.id if kv else None)
    dispatcher = resolved.dispatcher()
    routes = plan_routes(client, environment.routes, dispatcher, force=force, zone=environment.zone)
    unchanged = False
    if kv is None or kv.id is not None:
        deployed = deployed_dispatcher(client, account_id, dispatcher)
        unchanged = deployed is not None and not compare(code, deployed)
    return DeployResult(
        environment=resolved.env_name,
        dispatcher=dispatcher,
        namespace=resolved.namespace(),
        dry_run=True,
        metadata=code.metadata(),
        modules=[_summary(module) for module in code.modules],
        kv=kv,
        dispatcher_action="unchanged" if unchanged else "upload",
        uploaded=False,
        routes=routes,
    )


def conflict_error(result: DeployResult) -> CloudflareAPIError:
    """The error for routes owned by other Workers (exit 3), naming each and its owner."""
    named = ", ".join(f"{r.pattern} (routed to {r.owner or 'no Worker'})" for r in result.conflicts)
    return CloudflareAPIError(
        f"route conflict on zone {result.conflicts[0].zone}: {named}; "
        f"the dispatcher {result.dispatcher} was not deployed",
        hint="rerun with --force to take these routes over for the dispatcher, "
        "or remove them from the environment's routes",
    )


def run_deploy(
    client: Cloudflare,
    account_id: str,
    resolved: ResolvedConfig,
    *,
    dry_run: bool = False,
    force: bool = False,
    plan: DeployResult | None = None,
) -> DeployResult:
    """Deploy the dispatcher and its routes (or, with ``dry_run``, only say what would happen).

    A real run with route conflicts raises before writing anything; a dry run returns them.
    ``plan`` (from :func:`plan_deploy`, made with the same ``force``) is carried out as it
    stands instead of reading everything again; the caller has made sure the namespace exists.
    """
    if dry_run:
        # A dry run previews a new environment too: say the namespace is missing, but still
        # show the metadata and route changes.
        exists = find_namespace(client, account_id, resolved.namespace()) is not None
        preview = plan_deploy(client, account_id, resolved, force=force, assume_namespace=True)
        preview.namespace_exists = exists
        return preview
    if plan is None:
        plan = plan_deploy(client, account_id, resolved, force=force)
    if plan.conflicts:
        raise conflict_error(plan)
    result = plan.model_copy(deep=True)
    result.dry_run = False
    if result.kv is not None and result.kv.id is None:
        result.kv.id = create_kv_namespace(client, account_id, result.kv.title)
        result.kv.action = "created"
    if result.dispatcher_action == "upload":
        code = dispatcher_code(resolved, result.kv.id if result.kv else None)
        result.metadata = code.metadata()
        result.version_id = upload_dispatcher(client, account_id, result.dispatcher, code)
        result.uploaded = True
    for route in result.routes:
        apply_route(client, route, result.dispatcher)
    return result


def upload_dispatcher(
    client: Cloudflare, account_id: str, name: str, code: WorkerCode
) -> str | None:
    """``PUT /accounts/{a}/workers/scripts/{name}``: the metadata part plus the modules.

    The version it creates is annotated like every code24ctl upload
    (:func:`~code24ctl.cloudflare.versions.release_annotations`); returns its id, or None when
    the answer does not carry one.
    """
    from code24ctl.cloudflare.versions import release_annotations, version_id_from_put

    metadata = code.metadata()
    metadata["annotations"] = release_annotations(metadata["bindings"])
    with api_call(f"upload dispatcher Worker {name}"):
        answer = client.workers.scripts.update(
            name,
            account_id=account_id,
            metadata=metadata,  # type: ignore[arg-type]  # plain JSON, SDK TypedDict
            files=sdk_files(code.modules),
        )
    return version_id_from_put(answer)


def apply_route(client: Cloudflare, route: RouteChange, dispatcher: str) -> None:
    """Create or take over one route for the dispatcher; unchanged ones are left alone."""
    if route.action == "create":
        with api_call(f"create route {route.pattern}"):
            created = client.workers.routes.create(
                zone_id=route.zone_id, pattern=route.pattern, script=dispatcher
            )
        route.route_id = created.id if created is not None else None
        route.applied = True
    elif route.action == "update" and route.route_id:
        with api_call(f"take over route {route.pattern} from {route.owner}"):
            client.workers.routes.update(
                route.route_id, zone_id=route.zone_id, pattern=route.pattern, script=dispatcher
            )
        route.applied = True


def route_zones(result: DeployResult) -> list[tuple[str, str]]:
    """``(pattern, zone name)`` of every configured route, for wrangler.toml."""
    return [(route.pattern, route.zone) for route in result.routes]


def _summary(module: Module) -> ModuleSummary:
    return ModuleSummary(
        name=module.name,
        content_type=module.content_type,
        size=len(module.content),
        sha256=module.sha256,
    )
