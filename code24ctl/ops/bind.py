"""Put the configured workers into a dispatch namespace, take them out, and say which are there.

Public API (``apply`` and ``doctor`` use it; keep it stable):

- :func:`plan_bind` reads every selected alias (copy of its ``script``, or its ``path``) and
  what the namespace holds, and returns a :class:`BindPlan`: one :class:`BindRow` per alias,
  ``would-create`` / ``would-update`` (with its typed differences) / ``unchanged`` /
  ``failed``, plus the code it downloaded. :func:`execute_bind` uploads that code (nothing is
  read twice) and returns a :class:`BindReport` (``created`` / ``updated`` / ``unchanged`` /
  ``failed``). One failing worker never stops the others. :func:`bind_workers` is both.
  :class:`BindOptions` holds how (concurrency, progress callback, pacer).
- :func:`unbind_workers` deletes Workers from the namespace (:class:`UnbindRow` each).
- :func:`worker_status` compares configured aliases with the namespace's contents
  (:class:`WorkerStatusRow`: ``bound`` / ``missing`` / ``stale`` / ``not-in-config``);
  :func:`stale_workers` names the Workers code24ctl wrote that the config no longer names.

Idempotency stores nothing locally: an alias already in the namespace is read back (modules and
settings) and compared with what would be uploaded; equal means ``unchanged`` and no upload.
Every request goes through the client's paced transport (:mod:`code24ctl.cloudflare.pacing`:
one pacer, the SDK's retries off), from a thread pool of ``concurrency`` workers.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Literal, TypeVar

from pydantic import BaseModel, Field

from code24ctl.cloudflare.client import SCRIPT_NOT_FOUND, api_call, is_not_found
from code24ctl.cloudflare.migrations import (
    class_migration,
    namespace_migration_tag,
    own_durable_object_classes,
)
from code24ctl.cloudflare.modules import sdk_files
from code24ctl.cloudflare.namespaces import (
    NamespaceScript,
    list_namespace_scripts,
    require_namespace,
)
from code24ctl.cloudflare.outcome import write_checked
from code24ctl.cloudflare.ownership import MANAGED_TAG_PREFIX, MAX_TAGS, managed_alias, managed_tags
from code24ctl.cloudflare.pacing import Pacer, PacerStats, RetryPolicy, sent_once
from code24ctl.cloudflare.worker_code import (
    DeployedWorker,
    WorkerCode,
    load_worker_code,
    read_namespace_worker,
)
from code24ctl.cloudflare.worker_diff import Difference, compare
from code24ctl.config import check_names
from code24ctl.constants import DEFAULT_WORKER_CONCURRENCY, MAX_WORKER_CONCURRENCY
from code24ctl.errors import Change, CloudflareAPIError, Code24Error, Failure, UsageError
from code24ctl.names import did_you_mean
from code24ctl.ops.changes import ChangeLog
from code24ctl.ops.failures import HoldsFailure
from code24ctl.ops.plan import PlannedChange

if TYPE_CHECKING:
    from code24ctl.cloudflare.session import CloudflareSession
    from code24ctl.config import ResolvedConfig

DEFAULT_CONCURRENCY = DEFAULT_WORKER_CONCURRENCY
MAX_CONCURRENCY = MAX_WORKER_CONCURRENCY

BindAction = Literal["created", "updated", "unchanged", "failed", "would-create", "would-update"]
UnbindAction = Literal["deleted", "not-bound", "failed", "would-delete"]
WorkerState = Literal["bound", "missing", "stale", "not-in-config"]


class BindRow(HoldsFailure):
    """The outcome for one alias (``bind --json`` prints a list of these).

    A ``failed`` row holds its :class:`Failure`, printed as ``error``, ``code`` (the API's)
    and ``hint`` after ``secrets_to_set``.
    """

    failure_after: ClassVar[str] = "secrets_to_set"

    alias: str
    action: BindAction
    source: str
    secrets_to_set: list[str] = Field(default_factory=list)
    changes: list[Difference] = Field(default_factory=list)  # for updated/would-update
    dropped_bindings: list[str] = Field(default_factory=list)  # not copyable, e.g. assets
    # secret_key (WebCrypto key) bindings: `secret put` cannot make them, so they are apart.
    secret_keys_to_set: list[str] = Field(default_factory=list)
    # What the copy carries besides its code: settings, tags, migrations, bindings by name.
    carries: list[str] = Field(default_factory=list)
    # The source's cron schedules: a copy in a namespace keeps none (workers-sdk #13840).
    dropped_schedules: list[str] = Field(default_factory=list)
    # The source's settings a copy cannot carry (``usage_model unbound``: uploads take standard).
    dropped_settings: list[str] = Field(default_factory=list)
    # Names the copy holds as a secret and the source as a plain binding: an upload would
    # replace the secret with the plain value (``secret → plain_text``); refused unless forced.
    secrets_shadowed: list[str] = Field(default_factory=list, exclude=True)

    @property
    def failed(self) -> bool:
        return self.action == "failed"


class ApiUsage(BaseModel):
    """What a run cost in API requests (retries included)."""

    requests: int = 0
    retries: int = 0
    throttled: int = 0  # 429 answers met
    server_errors: int = 0  # 5xx answers met (HTML edge pages included)
    waited_s: float = 0.0  # time spent waiting for the budget


class BindReport(BaseModel):
    """The outcome of a bind (or of its plan): one row per alias, in the order asked."""

    namespace: str
    dry_run: bool
    rows: list[BindRow]
    api: ApiUsage = Field(default_factory=ApiUsage)

    @property
    def failed(self) -> list[BindRow]:
        return [row for row in self.rows if row.failed]

    @property
    def ok(self) -> bool:
        return not self.failed

    def count(self, action: BindAction) -> int:
        return sum(1 for row in self.rows if row.action == action)

    @property
    def changes(self) -> int:
        """How many aliases were (or would be) uploaded."""
        return sum(1 for row in self.rows if row.action not in ("unchanged", "failed"))

    def counts(self) -> dict[str, int]:
        """The ``summary`` of ``bind --json``: rows by action, and the secrets still to set."""
        actions: tuple[BindAction, ...] = (
            "created", "updated", "unchanged", "failed", "would-create", "would-update"
        )  # fmt: skip
        counts = {action.replace("-", "_"): self.count(action) for action in actions}
        counts["secrets_to_set"] = sum(len(row.secrets_to_set) for row in self.rows)
        return counts

    def changes_made(self) -> tuple[Change, ...]:
        """Each upload carried out, as a :class:`Change` (what a failed run had written)."""
        return tuple(
            Change("worker", row.alias, row.action, f"from {row.source}")
            for row in self.rows
            if row.action in ("created", "updated")
        )

    def failure_summary(self, *, with_errors: bool = False) -> str:
        """``N of M worker(s) failed to bind: ...`` naming each failed alias (with its error
        and API code when ``with_errors``); empty when none failed."""
        failed = self.failed
        if not failed:
            return ""
        if with_errors:
            named = "; ".join(
                f"{row.alias}: {row.failure.with_api_code() if row.failure else '?'}"
                for row in failed
            )
        else:
            named = ", ".join(row.alias for row in failed)
        return f"{len(failed)} of {len(self.rows)} worker(s) failed to bind: {named}"


class UnbindRow(HoldsFailure):
    """The outcome of removing one Worker from the namespace (a ``failed`` one holds its
    :class:`Failure`, printed as ``error``, ``code`` and ``hint``)."""

    failure_after: ClassVar[str] = "action"

    alias: str
    action: UnbindAction


class WorkerStatusRow(BaseModel):
    """One alias in ``code24ctl workers``: configured and/or present in the namespace."""

    alias: str
    status: WorkerState
    source: str | None = None  # where the config takes its code from (None: not configured)
    modified_on: datetime | None = None  # when the namespace's copy last changed


RowCallback = Callable[[BindRow], None]


@dataclass(frozen=True)
class BindOptions:
    """How to bind: ``concurrency`` workers at a time, ``on_row`` called (from a worker thread)
    as each alias is planned or carried out, a pacer/retry policy to run under instead of
    the session's (see :meth:`CloudflareSession.paced`), and ``force`` (replace a copy's
    secret with the source's plain binding of the same name)."""

    concurrency: int = DEFAULT_CONCURRENCY
    on_row: RowCallback | None = None
    pacer: Pacer | None = None
    policy: RetryPolicy | None = None
    #: Upload even where a copy's secret would become the source's plain value.
    force: bool = False


@dataclass
class BindPlan:
    """What a bind would do, from reads only: one row per alias, and the code to upload.

    ``codes`` holds each ``would-create`` / ``would-update`` alias's downloaded code, so
    :func:`execute_bind` uploads it without reading again.
    """

    resolved: ResolvedConfig
    namespace: str
    rows: list[BindRow]
    codes: dict[str, WorkerCode] = field(default_factory=dict)
    api: ApiUsage = field(default_factory=ApiUsage)

    def report(self) -> BindReport:
        """The plan as a dry run's report (``would-create`` / ``would-update`` rows)."""
        return BindReport(namespace=self.namespace, dry_run=True, rows=self.rows, api=self.api)

    def changes(self) -> list[PlannedChange]:
        """Each upload the plan would make, as a ``+`` / ``~`` change with its fields."""
        return [
            PlannedChange(
                action="create" if row.action == "would-create" else "update",
                kind="worker",
                name=row.alias,
                note=_note(row),
                fields=list(row.changes),
            )
            for row in self.rows
            if row.action in ("would-create", "would-update")
        ]

    def problems(self) -> list[str]:
        """Each alias that could not be planned, with its error."""
        return [
            f"worker {row.alias}: {row.failure.message if row.failure else '?'}"
            for row in self.rows
            if row.failed
        ]


def _note(row: BindRow) -> str:
    """The plan's note for an upload: its source, and for a new copy its Workers Logs setting
    (an update shows a changed setting among its fields)."""
    if row.action != "would-create":
        return row.source
    logs = [item for item in row.carries if item.startswith("observability")]
    return f"{row.source}, {logs[0]}" if logs else row.source


_T = TypeVar("_T")
_R = TypeVar("_R")


# --------------------------------------------------------------------------------------------
# Selecting aliases and checking the namespace


def select_aliases(resolved: ResolvedConfig, aliases: Sequence[str] | None) -> list[str]:
    """The aliases to bind: all configured ones (config order), or the named ones, deduplicated.

    An alias that is not in the config is a usage error (exit 2), before any API call.
    """
    configured = list(resolved.config.workers)
    if not aliases:
        return configured
    unknown = [alias for alias in aliases if alias not in resolved.config.workers]
    if unknown:
        raise UsageError(
            f"unknown worker alias{'es' if len(unknown) > 1 else ''}: {', '.join(unknown)}"
            + did_you_mean(unknown[0], configured),
            hint=f"configured in {resolved.path}: {', '.join(configured)}",
        )
    return list(dict.fromkeys(aliases))


# --------------------------------------------------------------------------------------------
# bind


def plan_bind(
    session: CloudflareSession,
    resolved: ResolvedConfig,
    aliases: Sequence[str] | None = None,
    *,
    options: BindOptions | None = None,
    existing: set[str] | None = None,
) -> BindPlan:
    """Read each selected alias and the namespace's copy, and say what a bind would do.

    Raises (before reading any worker) :class:`UsageError` for an unknown alias and
    :class:`CloudflareAPIError` (code 100119) when the namespace does not exist. ``existing``
    is for a caller that already knows the namespace's Worker names (``apply``, which creates
    the namespace first, passes an empty set): the namespace is then neither checked nor
    listed. Per-alias read failures become ``failed`` rows carrying the API code and a hint.
    """
    options = options or BindOptions()
    selected = select_aliases(resolved, aliases)
    namespace = resolved.namespace()
    workers = _concurrency(options.concurrency)
    with session.paced(options.pacer, options.policy) as api:
        before = _snapshot(api.pacer.stats)
        if existing is None:
            require_namespace(api, namespace, resolved.env_name)
            existing = bound_names(api, namespace, resolved.env_name)
        there = existing

        def one(alias: str) -> tuple[BindRow, WorkerCode | None]:
            done = _plan_one(api, resolved, namespace, alias, alias in there, options.force)
            if options.on_row is not None:
                options.on_row(done[0])
            return done

        results = _run_all(one, selected, workers)
        usage = _usage(before, api.pacer.stats)
    return BindPlan(
        resolved=resolved,
        namespace=namespace,
        rows=[row for row, _ in results],
        codes={row.alias: code for row, code in results if code is not None},
        api=usage,
    )


def execute_bind(
    session: CloudflareSession,
    plan: BindPlan,
    *,
    options: BindOptions | None = None,
    log: ChangeLog | None = None,
) -> BindReport:
    """Carry a plan out: upload the code it read for each ``would-*`` row, leave its
    ``unchanged`` rows alone, and try its ``failed`` rows again from the start (perhaps a
    passing error). The caller has made sure the namespace exists. Never raises per alias.

    Each upload is recorded in ``log`` as it lands; an interruption (Ctrl-C, SIGTERM) waits
    for the uploads in flight and leaves carrying every upload made, those included.
    """
    log = log or ChangeLog()
    options = options or BindOptions()
    workers = _concurrency(options.concurrency)
    resolved = plan.resolved
    with session.paced(options.pacer, options.policy) as api:
        before = _snapshot(api.pacer.stats)

        def one(row: BindRow) -> BindRow:
            code = plan.codes.get(row.alias)
            if row.action == "unchanged":
                done = row.model_copy()
            elif code is not None:
                done = _upload_planned(api, plan.namespace, row, code)
            else:
                # Failed in the plan: read it all again; it may have been bound meanwhile.
                done, code = _plan_one(
                    api, resolved, plan.namespace, row.alias, True, options.force
                )
                if code is not None:
                    done = _upload_planned(api, plan.namespace, done, code)
            if done.action in ("created", "updated"):
                log.record("worker", done.alias, done.action, f"from {done.source}")
            if options.on_row is not None:
                options.on_row(done)
            return done

        with log.carried():
            rows = _run_all(one, plan.rows, workers)
        usage = _usage(before, api.pacer.stats)
    total = ApiUsage(
        **{name: getattr(plan.api, name) + getattr(usage, name) for name in ApiUsage.model_fields}
    )
    return BindReport(namespace=plan.namespace, dry_run=False, rows=rows, api=total)


def bind_workers(
    session: CloudflareSession,
    resolved: ResolvedConfig,
    aliases: Sequence[str] | None = None,
    *,
    options: BindOptions | None = None,
) -> BindReport:
    """:func:`plan_bind` then :func:`execute_bind`: bind the selected aliases."""
    plan = plan_bind(session, resolved, aliases, options=options)
    return execute_bind(session, plan, options=options)


def _plan_one(
    session: CloudflareSession,
    resolved: ResolvedConfig,
    namespace: str,
    alias: str,
    exists: bool,
    force: bool = False,
) -> tuple[BindRow, WorkerCode | None]:
    """Read one alias and compare; the code is returned with a ``would-create`` /
    ``would-update`` row, so carrying the plan out needs no second read.

    A name the copy holds as a secret and the source as a plain binding fails the row
    (``secret → plain_text``) unless ``force``: the upload would lose the secret."""
    source = resolved.config.workers[alias].source
    try:
        code = load_worker_code(session, resolved, alias)
        source = code.source
        deployed = _read_deployed(session, namespace, alias) if exists else None
        migrations = _migration(session, namespace, alias, code, deployed)
        code = managed_copy(code, resolved, alias, migrations=migrations)
    except Code24Error as exc:
        return _failed(alias, source, exc), None
    secrets_set = set(deployed.secrets) if deployed else set()
    shadowed = sorted({str(b.get("name")) for b in code.bindings} & secrets_set)
    if shadowed and not force:
        kinds = {str(b.get("name")): str(b.get("type")) for b in code.bindings}
        named = ", ".join(f"{name} (secret → {kinds[name]})" for name in shadowed)
        refused = _failed(
            alias,
            source,
            UsageError(
                f"{source} binds {named} where the copy in {namespace} holds a secret: "
                "uploading would replace the secret with the plain value",
                hint=f"keep the secret: rename or remove the binding in {source}; or rerun "
                "with --force to replace it",
            ),
        )
        refused.secrets_shadowed = shadowed
        return refused, None
    row = BindRow(
        alias=alias,
        action="would-create" if deployed is None else "would-update",
        source=source,
        secrets_to_set=[name for name in code.secrets if name not in secrets_set],
        secret_keys_to_set=[name for name in code.secret_keys if name not in secrets_set],
        changes=compare(code, deployed) if deployed is not None else [],
        dropped_bindings=list(code.dropped),
        dropped_schedules=list(code.schedules),
        dropped_settings=list(code.dropped_settings),
        secrets_shadowed=shadowed,
    )
    if deployed is not None and not row.changes:
        row.action = "unchanged"
        return row, None
    # What the upload will carry is part of the plan; once carried out, the row says what it did.
    row.carries = code.carried()
    return row, code


def managed_copy(
    code: WorkerCode,
    resolved: ResolvedConfig,
    alias: str,
    *,
    migrations: Mapping[str, Any] | None = None,
) -> WorkerCode:
    """``code`` as code24ctl uploads it: its own tags plus the managed ones, and the
    ``migrations`` (from :func:`_migration`) that create the Durable Object classes the copy
    lacks, and the config's ``observability`` (Workers Logs) for the alias. Raises
    :class:`UsageError` when the tags would pass the limit of eight.
    """
    own = [tag for tag in code.tags if not tag.startswith(MANAGED_TAG_PREFIX)]
    tags = own + managed_tags(resolved, f"alias:{alias}")
    if len(tags) > MAX_TAGS:
        raise UsageError(
            f"{code.source} has {len(own)} tags; with code24ctl's 3 the copy would have "
            f"{len(tags)}, over Cloudflare's limit of {MAX_TAGS}",
            hint=f"remove tags from the source Worker: {', '.join(own)}",
        )
    settings = dict(code.settings)
    observability = resolved.config.observability_of(alias)
    if observability is not None:
        # The config's Workers Logs keys win over the source's (so `logs` finds the copy's lines
        # whatever the source Worker has); the source's other keys (logs, traces) stay.
        source = settings.get("observability")
        kept = dict(source) if isinstance(source, Mapping) else {}
        settings["observability"] = kept | observability.model_dump()
    return dataclasses.replace(code, tags=tuple(tags), migrations=migrations, settings=settings)


def _migration(
    session: CloudflareSession,
    namespace: str,
    alias: str,
    code: WorkerCode,
    deployed: DeployedWorker | None,
) -> dict[str, Any] | None:
    """The migration the copy's upload needs (:func:`class_migration`): on a first upload, one
    creating every class the Worker implements; on an update, one creating the classes the copy
    does not have yet, after the copy's migration tag (read only then, as wrangler does).

    The classes are created as SQLite-backed (``new_sqlite_classes``): the settings answer does
    not say which backend the source used, a copy starts with empty storage either way, and a
    SQLite-backed class offers every storage API a key-value one does (plus SQL), so code written
    for either runs.
    """
    if deployed is None:
        return class_migration(alias, code.durable_object_classes, (), None)
    existing = own_durable_object_classes(deployed.bindings)
    if set(code.durable_object_classes) <= set(existing):
        return None
    tag = namespace_migration_tag(session, namespace, alias)
    return class_migration(alias, code.durable_object_classes, existing, tag)


def _upload_planned(
    session: CloudflareSession, namespace: str, row: BindRow, code: WorkerCode
) -> BindRow:
    """Carry out a ``would-create`` / ``would-update`` row (a failure is a ``failed`` row)."""
    try:
        upload_worker(session, namespace, row.alias, code)
    except Code24Error as exc:
        return _failed(row.alias, row.source, exc)
    action: BindAction = "created" if row.action == "would-create" else "updated"
    return row.model_copy(update={"action": action, "carries": []})


def _failed(alias: str, source: str, exc: Code24Error) -> BindRow:
    return BindRow(alias=alias, action="failed", source=source, failure=Failure.of(exc))


def _read_deployed(session: CloudflareSession, namespace: str, alias: str) -> DeployedWorker | None:
    try:
        return read_namespace_worker(session, namespace, alias)
    except CloudflareAPIError as exc:
        if is_not_found(exc, SCRIPT_NOT_FOUND):
            return None  # deleted since we listed the namespace: a create
        raise


def upload_worker(session: CloudflareSession, namespace: str, name: str, code: WorkerCode) -> None:
    """Upload ``code`` into the namespace as ``name`` (multipart: metadata + one part a module).

    The metadata keeps secret bindings already set on the namespace's copy (``keep_bindings``),
    so a re-bind never wipes what ``code24ctl secret put`` set.

    An upload without a migration is safe to repeat (the transport does). One that carries a
    Durable Object migration is not: sent again after it was applied, its ``old_tag`` no
    longer matches and it is refused. So it is sent once, and when its answer is lost the
    copy's migration tag is read back (:func:`write_checked`): the new tag means it landed.
    """
    what = f"upload Worker {name} to dispatch namespace {namespace}"

    def upload() -> bool:
        with api_call(what):
            session.client.workers_for_platforms.dispatch.namespaces.scripts.update(
                name,
                account_id=session.account_id,
                dispatch_namespace=namespace,
                metadata=code.metadata(),  # type: ignore[arg-type]  # plain JSON, SDK TypedDict
                files=sdk_files(code.modules),
            )
        return True

    new_tag = (code.migrations or {}).get("new_tag")
    if not new_tag:
        upload()
        return

    def landed() -> bool | None:
        try:
            tag = namespace_migration_tag(session, namespace, name)
        except CloudflareAPIError as exc:
            if is_not_found(exc, SCRIPT_NOT_FOUND):
                return None  # a first upload that did not land
            raise
        return True if tag == new_tag else None

    with sent_once():
        write_checked(
            f"{what} (migration {new_tag})",
            upload,
            landed,
            shows="code24ctl workers",
        )


# --------------------------------------------------------------------------------------------
# unbind


def unbind_workers(
    session: CloudflareSession,
    namespace: str,
    names: Sequence[str],
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    dry_run: bool = False,
    present: set[str] | None = None,
    pacer: Pacer | None = None,
    policy: RetryPolicy | None = None,
) -> list[UnbindRow]:
    """Delete ``names`` from the namespace (one row each; a failure never stops the others).

    ``present`` (from :func:`bound_names`) saves listing the namespace again; names not in it
    are ``not-bound`` and not deleted.
    """
    wanted = list(dict.fromkeys(check_worker_names(names)))
    with session.paced(pacer, policy) as api:
        there = present if present is not None else bound_names(api, namespace)

        def one(name: str) -> UnbindRow:
            if name not in there:
                return UnbindRow(alias=name, action="not-bound")
            if dry_run:
                return UnbindRow(alias=name, action="would-delete")
            try:
                delete_worker(api, namespace, name)
            except Code24Error as exc:
                if isinstance(exc, CloudflareAPIError) and is_not_found(exc, SCRIPT_NOT_FOUND):
                    return UnbindRow(alias=name, action="not-bound")
                return UnbindRow(alias=name, action="failed", failure=Failure.of(exc))
            return UnbindRow(alias=name, action="deleted")

        return _run_all(one, wanted, _concurrency(concurrency))


def delete_worker(session: CloudflareSession, namespace: str, name: str) -> None:
    """Delete ``name`` from the namespace; a missing Worker raises (``SCRIPT_NOT_FOUND``).

    Sent once, not repeated by the transport: a repeat after a DELETE that was carried out but
    whose answer was lost meets "not found", which would report our own delete as a Worker
    that was never there. So a lost answer is read back (:func:`write_checked`): the Worker
    gone means this delete was carried out; still there, it is sent once more.
    """
    what = f"delete Worker {name} from dispatch namespace {namespace}"
    scripts = session.client.workers_for_platforms.dispatch.namespaces.scripts

    def delete() -> bool:
        with sent_once(), api_call(what):
            scripts.delete(name, account_id=session.account_id, dispatch_namespace=namespace)
        return True

    def gone() -> bool | None:
        try:
            with api_call(f"read Worker {name} in dispatch namespace {namespace}"):
                scripts.get(name, account_id=session.account_id, dispatch_namespace=namespace)
        except CloudflareAPIError as exc:
            if is_not_found(exc, SCRIPT_NOT_FOUND):
                return True
            raise
        return None

    # Only the DELETE is sent once; the read back is an ordinary read, retried as any.
    write_checked(what, delete, gone, shows="code24ctl workers")


def deletions(rows: Sequence[UnbindRow]) -> tuple[Change, ...]:
    """Each Worker an unbind deleted, as a :class:`Change` (what a failed run had done)."""
    return tuple(Change("worker", row.alias, "deleted") for row in rows if row.action == "deleted")


def check_worker_names(names: Sequence[str]) -> list[str]:
    """Refuse (exit 2) names that cannot be Worker names, before any API call."""
    return check_names(names, "Worker name")


def bound_names(
    session: CloudflareSession, namespace: str, env_name: str | None = None
) -> set[str]:
    """The names of the Workers the namespace holds (all pages)."""
    listing = list_namespace_scripts(session, namespace, env_name)
    return {script.id for script in listing}


# --------------------------------------------------------------------------------------------
# worker status


def worker_status(
    session: CloudflareSession,
    resolved: ResolvedConfig,
    *,
    pacer: Pacer | None = None,
    policy: RetryPolicy | None = None,
) -> list[WorkerStatusRow]:
    """Configured aliases against the namespace: ``bound`` / ``missing``, then the namespace's
    other Workers (sorted by name): ``stale`` when their tags say code24ctl wrote them for this
    platform and environment (the config no longer names them), else ``not-in-config``.

    One paged listing; a missing namespace raises :class:`CloudflareAPIError` (code 100119).
    """
    namespace = resolved.namespace()
    with session.paced(pacer, policy) as api:
        listing = list_namespace_scripts(api, namespace, resolved.env_name)
        scripts = {s.id: s for s in listing}
    rows: list[WorkerStatusRow] = []
    for alias, worker in resolved.config.workers.items():
        held = scripts.get(alias)
        rows.append(
            WorkerStatusRow(
                alias=alias,
                status="bound" if held else "missing",
                source=worker.source,
                modified_on=held.modified_on if held else None,
            )
        )
    stale = set(_stale(listing, resolved))
    for name in sorted(set(scripts) - set(resolved.config.workers)):
        rows.append(
            WorkerStatusRow(
                alias=name,
                status="stale" if name in stale else "not-in-config",
                modified_on=scripts[name].modified_on,
            )
        )
    return rows


def stale_workers(listing: Sequence[NamespaceScript], resolved: ResolvedConfig) -> list[str]:
    """The Workers of a namespace listing that code24ctl wrote for this platform and
    environment (their tags say so) but the config no longer names, sorted."""
    return sorted(_stale(listing, resolved))


def _stale(listing: Sequence[NamespaceScript], resolved: ResolvedConfig) -> Iterator[str]:
    configured = set(resolved.config.workers)
    for script in listing:
        if script.id not in configured and managed_alias(script.tags, resolved) is not None:
            yield script.id


# --------------------------------------------------------------------------------------------
# shared machinery


def _concurrency(value: int) -> int:
    if not 1 <= value <= MAX_CONCURRENCY:
        raise UsageError(f"--concurrency must be between 1 and {MAX_CONCURRENCY}, not {value}")
    return value


def _run_all(work: Callable[[_T], _R], items: Sequence[_T], workers: int) -> list[_R]:
    if workers == 1 or len(items) <= 1:
        return [work(item) for item in items]
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="code24ctl")
    try:
        futures: list[Future[_R]] = [pool.submit(work, item) for item in items]
        return [future.result() for future in futures]
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    finally:
        pool.shutdown(wait=True)


def _snapshot(stats: PacerStats) -> PacerStats:
    return PacerStats(**vars(stats))


def _usage(before: PacerStats, after: PacerStats) -> ApiUsage:
    return ApiUsage(
        requests=after.sent - before.sent,
        retries=after.retried - before.retried,
        throttled=after.throttled - before.throttled,
        server_errors=after.server_errors - before.server_errors,
        waited_s=round(after.waited_s - before.waited_s, 3),
    )
