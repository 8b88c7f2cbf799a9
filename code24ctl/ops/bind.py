"""Put the configured workers into a dispatch namespace, take them out, and say which are there.

Public API (``apply`` and ``doctor`` use it; keep it stable):

- :func:`bind_workers` uploads every selected alias (copy of its ``script``, or its ``path``)
  into the environment's namespace and returns a :class:`BindReport`, one :class:`BindRow` per
  alias: ``created`` / ``updated`` / ``unchanged`` / ``failed``. One failing worker never stops
  the others. :func:`plan_bind` is the same without writing (``would-create`` /
  ``would-update`` / ``unchanged``).
- :func:`unbind_workers` deletes Workers from the namespace (:class:`UnbindRow` each).
- :func:`worker_status` compares configured aliases with the namespace's contents
  (:class:`WorkerStatusRow`: ``bound`` / ``missing`` / ``not-in-config``).

Idempotency stores nothing locally: an alias already in the namespace is read back (modules and
settings) and compared with what would be uploaded; equal means ``unchanged`` and no upload.
Every request goes through one :class:`~code24ctl.cloudflare.pacing.Pacer` with the SDK's
retries off (see :mod:`code24ctl.cloudflare.pacing`), from a thread pool of ``concurrency``
workers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Literal, TypeVar

from pydantic import BaseModel, Field, PrivateAttr

from code24ctl.cloudflare.client import SCRIPT_NOT_FOUND, api_call, is_not_found
from code24ctl.cloudflare.modules import sdk_files
from code24ctl.cloudflare.namespaces import (
    find_namespace,
    list_namespace_scripts,
    require_namespace,
)
from code24ctl.cloudflare.pacing import Pacer, PacerStats, RetryPolicy, paced_client, pacer_of
from code24ctl.cloudflare.scripts import (
    DeployedWorker,
    WorkerCode,
    compare,
    load_worker_code,
    read_namespace_worker,
)
from code24ctl.config import check_names
from code24ctl.constants import DEFAULT_WORKER_CONCURRENCY, MAX_WORKER_CONCURRENCY
from code24ctl.errors import CloudflareAPIError, Code24Error, UsageError

if TYPE_CHECKING:
    from cloudflare import Cloudflare

    from code24ctl.config import ResolvedConfig

DEFAULT_CONCURRENCY = DEFAULT_WORKER_CONCURRENCY
MAX_CONCURRENCY = MAX_WORKER_CONCURRENCY

BindAction = Literal["created", "updated", "unchanged", "failed", "would-create", "would-update"]
UnbindAction = Literal["deleted", "not-bound", "failed", "would-delete"]
WorkerState = Literal["bound", "missing", "not-in-config"]


class BindRow(BaseModel):
    """The outcome for one alias (``bind --json`` prints a list of these)."""

    alias: str
    action: BindAction
    source: str
    secrets_to_set: list[str] = Field(default_factory=list)
    error: str | None = None
    code: int | None = None  # the API error code of a failure, when the API gave one
    hint: str | None = None  # what to do about a failure
    changes: list[str] = Field(default_factory=list)  # what differs, for updated/would-update
    dropped_bindings: list[str] = Field(default_factory=list)  # not copyable, e.g. assets

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
    # A plan's downloaded code for each alias it would upload (never serialized): carrying the
    # plan out uploads it instead of downloading everything again.
    _codes: dict[str, WorkerCode] = PrivateAttr(default_factory=dict)

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

    def failure_summary(self, *, with_errors: bool = False) -> str:
        """``N of M worker(s) failed to bind: ...`` naming each failed alias (with its error
        and API code when ``with_errors``); empty when none failed."""
        failed = self.failed
        if not failed:
            return ""
        if with_errors:
            named = "; ".join(
                f"{row.alias}: {row.error}"
                + (f" (API error {row.code})" if row.code is not None else "")
                for row in failed
            )
        else:
            named = ", ".join(row.alias for row in failed)
        return f"{len(failed)} of {len(self.rows)} worker(s) failed to bind: {named}"


class UnbindRow(BaseModel):
    """The outcome of removing one Worker from the namespace."""

    alias: str
    action: UnbindAction
    error: str | None = None
    code: int | None = None
    hint: str | None = None


class WorkerStatusRow(BaseModel):
    """One alias in ``code24ctl workers``: configured and/or present in the namespace."""

    alias: str
    status: WorkerState
    source: str | None = None  # where the config takes its code from (None: not configured)
    modified_on: datetime | None = None  # when the namespace's copy last changed


RowCallback = Callable[[BindRow], None]
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
            f"unknown worker alias{'es' if len(unknown) > 1 else ''}: {', '.join(unknown)}",
            hint=f"configured in {resolved.path}: {', '.join(configured)}",
        )
    return list(dict.fromkeys(aliases))


# --------------------------------------------------------------------------------------------
# bind


def plan_bind(
    client: Cloudflare,
    account_id: str,
    resolved: ResolvedConfig,
    aliases: Sequence[str] | None = None,
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    pacer: Pacer | None = None,
    policy: RetryPolicy | None = None,
    on_row: RowCallback | None = None,
    require_namespace_exists: bool = True,
    namespace_exists: bool | None = None,
) -> BindReport:
    """What :func:`bind_workers` would do, reading only (``would-create`` / ``would-update``).

    With ``require_namespace_exists=False`` a missing namespace plans every alias as
    ``would-create`` (``apply`` plans the bind before it creates the namespace).
    ``namespace_exists`` is for a caller that has just looked the namespace up: it is not
    looked up again (False: every alias is a ``would-create``, without a call).
    """
    return bind_workers(
        client,
        account_id,
        resolved,
        aliases,
        concurrency=concurrency,
        dry_run=True,
        pacer=pacer,
        policy=policy,
        on_row=on_row,
        require_namespace_exists=require_namespace_exists,
        namespace_exists=namespace_exists,
    )


def bind_workers(
    client: Cloudflare,
    account_id: str,
    resolved: ResolvedConfig,
    aliases: Sequence[str] | None = None,
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    dry_run: bool = False,
    pacer: Pacer | None = None,
    policy: RetryPolicy | None = None,
    on_row: RowCallback | None = None,
    require_namespace_exists: bool = True,
    namespace_exists: bool | None = None,
    plan: BindReport | None = None,
) -> BindReport:
    """Upload the selected aliases into the environment's namespace; never raises per alias.

    Raises (before any upload) :class:`UsageError` for an unknown alias and
    :class:`CloudflareAPIError` (code 100119) when the namespace does not exist. Per-alias
    failures become ``failed`` rows carrying the API code and a hint. ``on_row`` is called (from
    a worker thread) as each alias finishes, for progress displays.

    ``plan`` (a report from :func:`plan_bind`) carries that plan out instead of reading again:
    its aliases, uploading the code it downloaded for each ``would-create`` / ``would-update``
    row, leaving its ``unchanged`` rows alone, and doing its ``failed`` rows from the start.
    The caller has made sure the namespace exists (it is neither checked nor listed).
    """
    if plan is not None and dry_run:
        raise ValueError("plan_bind is the dry run of a plan; carrying one out writes")
    if plan is not None:
        selected = [row.alias for row in plan.rows]
    else:
        selected = select_aliases(resolved, aliases)
    namespace = resolved.namespace()
    workers = _concurrency(concurrency)
    with _paced(client, pacer, policy) as (api, used):
        before = _snapshot(used.stats)
        if plan is None:
            existing = _existing_scripts(
                api,
                account_id,
                namespace,
                resolved.env_name,
                required=require_namespace_exists,
                known=namespace_exists,
            )
        planned = {row.alias: row for row in plan.rows} if plan is not None else {}

        def one(alias: str) -> tuple[BindRow, WorkerCode | None]:
            row = planned.get(alias)
            code = plan._codes.get(alias) if plan is not None else None
            if row is not None and row.action == "unchanged":
                done: tuple[BindRow, WorkerCode | None] = (row.model_copy(), None)
            elif row is not None and code is not None:
                done = (_upload_planned(api, account_id, namespace, row, code), None)
            else:
                # Not planned, or failed in the plan (perhaps a passing error): read it all. A
                # plan's failed row may have been bound meanwhile, so its copy is read too.
                there = alias in existing if plan is None else True
                done = _bind_one(api, account_id, resolved, namespace, alias, there, dry_run)
            if on_row is not None:
                on_row(done[0])
            return done

        results = _run_all(one, selected, workers)
        usage = _usage(before, used.stats)
    report = BindReport(
        namespace=namespace, dry_run=dry_run, rows=[row for row, _ in results], api=usage
    )
    if dry_run:
        report._codes = {row.alias: code for row, code in results if code is not None}
    return report


def _existing_scripts(
    client: Cloudflare,
    account_id: str,
    namespace: str,
    env_name: str,
    *,
    required: bool,
    known: bool | None,
) -> set[str]:
    if known is False:
        return set()  # the caller will create it
    if known is None:
        if required:
            require_namespace(client, account_id, namespace, env_name)
        elif find_namespace(client, account_id, namespace) is None:
            return set()
    return bound_names(client, account_id, namespace, env_name)


def _bind_one(
    client: Cloudflare,
    account_id: str,
    resolved: ResolvedConfig,
    namespace: str,
    alias: str,
    exists: bool,
    dry_run: bool,
) -> tuple[BindRow, WorkerCode | None]:
    """Read one alias, compare, and unless ``dry_run`` upload; the code is returned with a
    ``would-create`` / ``would-update`` row, so carrying the plan out needs no second read."""
    source = resolved.config.workers[alias].source
    try:
        code = load_worker_code(client, account_id, resolved, alias)
        source = code.source
        deployed = _read_deployed(client, account_id, namespace, alias) if exists else None
    except Code24Error as exc:
        return _failed(alias, source, exc), None
    secrets_set = set(deployed.secrets) if deployed else set()
    row = BindRow(
        alias=alias,
        action="would-create" if deployed is None else "would-update",
        source=source,
        secrets_to_set=[name for name in code.secrets if name not in secrets_set],
        changes=differences(code, deployed) if deployed is not None else [],
        dropped_bindings=list(code.dropped),
    )
    if deployed is not None and not row.changes:
        row.action = "unchanged"
        return row, None
    if dry_run:
        return row, code
    return _upload_planned(client, account_id, namespace, row, code), None


def _upload_planned(
    client: Cloudflare, account_id: str, namespace: str, row: BindRow, code: WorkerCode
) -> BindRow:
    """Carry out a ``would-create`` / ``would-update`` row (a failure is a ``failed`` row)."""
    try:
        upload_worker(client, account_id, namespace, row.alias, code)
    except Code24Error as exc:
        return _failed(row.alias, row.source, exc)
    action: BindAction = "created" if row.action == "would-create" else "updated"
    return row.model_copy(update={"action": action})


def _failed(alias: str, source: str, exc: Code24Error) -> BindRow:
    return BindRow(
        alias=alias,
        action="failed",
        source=source,
        error=exc.message,
        code=exc.code if isinstance(exc, CloudflareAPIError) else None,
        hint=exc.hint,
    )


def _read_deployed(
    client: Cloudflare, account_id: str, namespace: str, alias: str
) -> DeployedWorker | None:
    try:
        return read_namespace_worker(client, account_id, namespace, alias)
    except CloudflareAPIError as exc:
        if is_not_found(exc, SCRIPT_NOT_FOUND):
            return None  # deleted since we listed the namespace: a create
        raise


def upload_worker(
    client: Cloudflare, account_id: str, namespace: str, name: str, code: WorkerCode
) -> None:
    """Upload ``code`` into the namespace as ``name`` (multipart: metadata + one part a module).

    The metadata keeps secret bindings already set on the namespace's copy (``keep_bindings``),
    so a re-bind never wipes what ``code24ctl secret put`` set.
    """
    with api_call(f"upload Worker {name} to dispatch namespace {namespace}"):
        client.workers_for_platforms.dispatch.namespaces.scripts.update(
            name,
            account_id=account_id,
            dispatch_namespace=namespace,
            metadata=code.metadata(),  # type: ignore[arg-type]  # plain JSON, SDK TypedDict
            files=sdk_files(code.modules),
        )


def differences(code: WorkerCode, deployed: DeployedWorker) -> list[str]:
    """The parts of the upload that differ from what the namespace holds ([] = the same).

    Each part once, in upload order: ``modules``, ``main_module``, ``compatibility_date``,
    ``compatibility_flags``, ``bindings`` (see :func:`~code24ctl.cloudflare.scripts.compare`).
    """
    return list(dict.fromkeys(found.field for found in compare(code, deployed)))


# --------------------------------------------------------------------------------------------
# unbind


def unbind_workers(
    client: Cloudflare,
    account_id: str,
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
    with _paced(client, pacer, policy) as (api, _):
        there = present if present is not None else bound_names(api, account_id, namespace)

        def one(name: str) -> UnbindRow:
            if name not in there:
                return UnbindRow(alias=name, action="not-bound")
            if dry_run:
                return UnbindRow(alias=name, action="would-delete")
            try:
                with api_call(f"delete Worker {name} from dispatch namespace {namespace}"):
                    api.workers_for_platforms.dispatch.namespaces.scripts.delete(
                        name, account_id=account_id, dispatch_namespace=namespace
                    )
            except CloudflareAPIError as exc:
                if is_not_found(exc, SCRIPT_NOT_FOUND):
                    return UnbindRow(alias=name, action="not-bound")
                return UnbindRow(
                    alias=name, action="failed", error=exc.message, code=exc.code, hint=exc.hint
                )
            except Code24Error as exc:
                return UnbindRow(alias=name, action="failed", error=exc.message, hint=exc.hint)
            return UnbindRow(alias=name, action="deleted")

        return _run_all(one, wanted, _concurrency(concurrency))


def check_worker_names(names: Sequence[str]) -> list[str]:
    """Refuse (exit 2) names that cannot be Worker names, before any API call."""
    return check_names(names, "Worker name")


def bound_names(
    client: Cloudflare, account_id: str, namespace: str, env_name: str | None = None
) -> set[str]:
    """The names of the Workers the namespace holds (all pages)."""
    listing = list_namespace_scripts(client, account_id, namespace, env_name)
    return {script.id for script in listing}


# --------------------------------------------------------------------------------------------
# worker status


def worker_status(
    client: Cloudflare,
    account_id: str,
    resolved: ResolvedConfig,
    *,
    pacer: Pacer | None = None,
    policy: RetryPolicy | None = None,
) -> list[WorkerStatusRow]:
    """Configured aliases against the namespace: ``bound`` / ``missing``, then the namespace's
    other Workers as ``not-in-config`` (sorted by name).

    One paged listing; a missing namespace raises :class:`CloudflareAPIError` (code 100119).
    """
    namespace = resolved.namespace()
    with _paced(client, pacer, policy) as (api, _):
        listing = list_namespace_scripts(api, account_id, namespace, resolved.env_name)
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
    for name in sorted(set(scripts) - set(resolved.config.workers)):
        rows.append(
            WorkerStatusRow(
                alias=name, status="not-in-config", modified_on=scripts[name].modified_on
            )
        )
    return rows


# --------------------------------------------------------------------------------------------
# shared machinery


@contextmanager
def _paced(
    client: Cloudflare, pacer: Pacer | None, policy: RetryPolicy | None
) -> Iterator[tuple[Cloudflare, Pacer]]:
    paced = paced_client(client, pacer, policy)
    used = pacer_of(paced)
    assert used is not None  # paced_client always installs one
    try:
        yield paced, used
    finally:
        if paced is not client and getattr(paced._client, "code24_owns_transport", False):
            paced.close()  # only the HTTP client we made; the caller's transport stays open


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
