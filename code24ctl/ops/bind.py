"""Put the configured workers into a dispatch namespace.

Public API (``apply`` and ``doctor`` use it; keep it stable):

- :func:`plan_bind` reads every selected alias (copy of its ``script``, or its ``path``) and
  what the namespace holds, and returns a :class:`BindPlan`: one :class:`BindRow` per alias,
  ``would-create`` / ``would-update`` (with its typed differences) / ``unchanged`` /
  ``failed``, plus the code it downloaded. :func:`execute_bind` uploads that code (nothing is
  read twice) and returns a :class:`BindReport` (``created`` / ``updated`` / ``unchanged`` /
  ``failed``). One failing worker never stops the others. :func:`bind_workers` is both.
  :class:`BindOptions` holds how (concurrency, progress callback, pacer).

Taking Workers out is :mod:`code24ctl.ops.unbind`; saying which are there,
:mod:`code24ctl.ops.worker_status`; the thread pool they share, :mod:`code24ctl.ops.pool`.

Idempotency stores nothing locally: an alias already in the namespace is read back (modules and
settings) and compared with what would be uploaded; equal means ``unchanged`` and no upload.
Every request goes through the client's paced transport (:mod:`code24ctl.cloudflare.pacing`:
one pacer, the SDK's retries off), from a thread pool of ``concurrency`` workers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import BaseModel, Field

from code24ctl.cloudflare.local_worker import load_worker_code
from code24ctl.cloudflare.namespaces import (
    require_namespace,
)
from code24ctl.cloudflare.pacing import Pacer, RetryPolicy
from code24ctl.cloudflare.worker_code import WorkerCode
from code24ctl.cloudflare.worker_diff import Difference, compare
from code24ctl.errors import Change, Code24Error, Failure, UsageError
from code24ctl.names import did_you_mean
from code24ctl.ops.changes import ChangeLog
from code24ctl.ops.failures import HoldsFailure
from code24ctl.ops.plan import PlannedChange
from code24ctl.ops.pool import (
    DEFAULT_CONCURRENCY,
    ApiUsage,
    checked_concurrency,
    run_all,
    snapshot,
    usage_between,
)
from code24ctl.ops.unbind import bound_names
from code24ctl.ops.worker_copy import copy_migration, managed_copy, read_deployed, upload_worker

if TYPE_CHECKING:
    from code24ctl.cloudflare.session import CloudflareSession
    from code24ctl.config import ResolvedConfig


BindAction = Literal["created", "updated", "unchanged", "failed", "would-create", "would-update"]


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
    workers = checked_concurrency(options.concurrency)
    with session.paced(options.pacer, options.policy) as api:
        before = snapshot(api.pacer.stats)
        if existing is None:
            require_namespace(api, namespace, resolved.env_name)
            existing = bound_names(api, namespace, resolved.env_name)
        there = existing

        def one(alias: str) -> tuple[BindRow, WorkerCode | None]:
            done = _plan_one(api, resolved, namespace, alias, alias in there, options.force)
            if options.on_row is not None:
                options.on_row(done[0])
            return done

        results = run_all(one, selected, workers)
        usage = usage_between(before, api.pacer.stats)
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
    workers = checked_concurrency(options.concurrency)
    resolved = plan.resolved
    with session.paced(options.pacer, options.policy) as api:
        before = snapshot(api.pacer.stats)

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
            rows = run_all(one, plan.rows, workers)
        usage = usage_between(before, api.pacer.stats)
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
        deployed = read_deployed(session, namespace, alias) if exists else None
        migrations = copy_migration(session, namespace, alias, code, deployed)
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
