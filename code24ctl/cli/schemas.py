"""Pydantic models of every command's ``--json`` document (the README's JSON contract).

Each is a :class:`~code24ctl.cli.documents.Document` (``command``, ``environment``,
``namespace``) plus the command's own fields; lists sit under plural keys and counts under
``summary``. Each command builds its document from its model (a report's ``counts()`` gives
the summary) and prints it with :func:`code24ctl.cli.output.emit`, so mypy sees every field.
:data:`COMMAND_MODELS` maps each command, as typed, to its model; the tests validate every
command's output, success and failure, and the README's examples, against it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field

from code24ctl.cli.documents import Document, ErrorDocument
from code24ctl.cloudflare.namespaces import NamespaceInfo
from code24ctl.config import ValidationSummary
from code24ctl.ops.apply import ApplyResult, PlanDocument
from code24ctl.ops.bind import BindRow
from code24ctl.ops.deploy import DeployReport
from code24ctl.ops.doctor_report import Check
from code24ctl.ops.logs import LogsReport
from code24ctl.ops.pool import ApiUsage
from code24ctl.ops.release import ReleaseReport
from code24ctl.ops.stats import StatsReport
from code24ctl.ops.tail import TailEvent
from code24ctl.ops.unbind import UnbindAction, UnbindRow
from code24ctl.ops.versions import VersionsReport
from code24ctl.ops.worker_status import WorkerState, WorkerStatusRow
from code24ctl.probe.report import ProbeReport

if TYPE_CHECKING:
    from code24ctl.serve.server import ServeInfo

Summary = dict[str, int]


class NamespaceListDocument(Document):
    """``namespace list``: every dispatch namespace on the account."""

    namespaces: list[NamespaceInfo]
    summary: Summary


class NamespaceDocument(Document):
    """``namespace get``: one namespace (``namespace`` is its name)."""

    id: str | None
    script_count: int | None
    created_on: datetime | None
    modified_on: datetime | None
    trusted_workers: bool | None

    @classmethod
    def of(cls, info: NamespaceInfo, environment: str | None) -> Self:
        """The document for one namespace (``namespace`` is its name)."""
        return cls(
            environment=environment,
            namespace=info.name,
            id=info.id,
            script_count=info.script_count,
            created_on=info.created_on,
            modified_on=info.modified_on,
            trusted_workers=info.trusted_workers,
        )


class NamespaceCreatedDocument(NamespaceDocument):
    """``namespace create``: the namespace, and whether this call made it."""

    created: bool = True


class NamespaceDeletedDocument(NamespaceDocument):
    """``namespace delete``: the namespace deleted, with how many secrets went with it."""

    deleted: bool = True
    secrets: int | None = None  # None: unknown


class WorkerRow(WorkerStatusRow):
    """A row of ``workers``: the status, and the secrets the namespace's copy still lacks."""

    secrets_missing: list[str] = Field(default_factory=list)


class WorkersDocument(Document):
    """``workers``: configured aliases against the namespace's Workers."""

    workers: list[WorkerRow]
    summary: Summary

    @classmethod
    def of(
        cls,
        rows: Sequence[WorkerStatusRow],
        lacking: Mapping[str, list[str]],
        environment: str,
        namespace: str,
    ) -> WorkersDocument:
        """The document for ``rows``, each with the secrets its copy lacks (``lacking``)."""
        states: tuple[WorkerState, ...] = ("bound", "missing", "not-in-config")
        summary = {
            state.replace("-", "_"): sum(1 for row in rows if row.status == state)
            for state in states
        }
        summary["secrets_missing"] = sum(len(names) for names in lacking.values())
        return cls(
            environment=environment,
            namespace=namespace,
            workers=[
                WorkerRow(
                    alias=row.alias,
                    status=row.status,
                    source=row.source,
                    modified_on=row.modified_on,
                    secrets_missing=lacking.get(row.alias, []),
                )
                for row in rows
            ],
            summary=summary,
        )


class BindDocument(Document):
    """``bind``: one row per alias, what the API cost, and the counts."""

    dry_run: bool
    workers: list[BindRow]
    api: ApiUsage
    summary: Summary


class UnbindDocument(Document):
    """``unbind``: one row per name asked for."""

    dry_run: bool
    workers: list[UnbindRow]
    summary: Summary

    @classmethod
    def of(
        cls, rows: Sequence[UnbindRow], *, environment: str, namespace: str, dry_run: bool
    ) -> UnbindDocument:
        """The document for ``rows``, counted by action."""
        actions: tuple[UnbindAction, ...] = ("deleted", "would-delete", "not-bound", "failed")
        return cls(
            environment=environment,
            namespace=namespace,
            dry_run=dry_run,
            workers=list(rows),
            summary={a.replace("-", "_"): sum(r.action == a for r in rows) for a in actions},
        )


class SecretInfo(BaseModel):
    """A secret's name and type (the API never returns values, and neither do we)."""

    model_config = ConfigDict(extra="forbid")

    name: str
    type: str


class SecretsDocument(Document):
    """``secret list|put|delete``: the Worker and the secrets listed, set or deleted."""

    worker: str
    secrets: list[SecretInfo]
    summary: Summary


class DeployDocument(Document, DeployReport):
    """``deploy``: what was uploaded and which routes changed."""

    environment: str
    namespace: str
    summary: Summary


class ApplyDocument(Document, ApplyResult):
    """``apply``: the plan, each step's result, what is left to do."""

    environment: str
    summary: Summary


class ProbeDocument(Document, ProbeReport):
    """``probe``: one row per route and the verdict counts."""

    environment: str


class DoctorDocument(Document):
    """``doctor``: every check in order, counts under ``summary``."""

    ok: bool
    checks: list[Check]
    summary: Summary


class WhoamiDocument(Document):
    """``whoami``: the token and account checks, and the account id used."""

    account_id: str
    ok: bool
    checks: list[Check]


class ConfigValidateDocument(Document, ValidationSummary):
    """``config validate``: what the file defines."""

    default_env: str | None
    summary: Summary


class ConfigShowDocument(Document):
    """``config show``: the config resolved for one environment (only that one)."""

    path: str
    environment_origin: str
    config: dict[str, Any]


class ServeDocument(Document):
    """``serve --json``: what runs, once it is ready."""

    url: str
    host: str
    port: int
    routes: list[dict[str, str]]
    upstreams: dict[str, str]
    demo: bool
    admin_url: str | None  # --metrics-port: /healthz and /metrics
    unreachable: list[str]  # aliases whose upstream refused a connection at start-up
    runtime: Literal["python", "workerd"]
    # --runtime workerd: per alias, the bindings its local Worker runs without, and why.
    missing_bindings: dict[str, list[str]]

    @classmethod
    def of(cls, info: ServeInfo) -> ServeDocument:
        """The document for a running ``serve``."""
        return cls(
            environment=info.environment,
            namespace=None,
            url=info.url,
            host=info.host,
            port=info.port,
            routes=[{"prefix": p or "/", "worker": w} for p, w in info.routes],
            upstreams=dict(info.upstreams),
            demo=bool(info.demo_workers),
            admin_url=info.admin_url,
            unreachable=list(info.unreachable),
            runtime=info.runtime,
            missing_bindings={alias: list(m) for alias, m in info.missing_bindings.items()},
        )


class InitDocument(Document):
    """``init``: the starter config written."""

    path: str
    written: bool


class PlanCommandDocument(Document, PlanDocument):
    """``plan``: every change apply would make, the problems that stop it, what it read."""


class LogsDocument(Document, LogsReport):
    """``logs``: the workers' (and, for one request, the dispatcher's) events, oldest first."""

    environment: str


class StatsDocument(Document, StatsReport):
    """``stats``: traffic against the KPI targets, overall and by worker, route or reason."""


class VersionsDocument(Document, VersionsReport):
    """``versions``: the dispatcher's recent versions and the current deployment."""


class ReleaseDocument(Document, ReleaseReport):
    """``promote`` / ``rollback`` (and ``deploy --gradual|--canary``): what the release did."""


#: ``tail`` streams: ``--format json`` (or ``--json``) prints one of these per line, the one
#: command whose output is a stream of documents rather than one.
TailLine = TailEvent

COMMAND_MODELS: dict[str, type[BaseModel]] = {
    "namespace list": NamespaceListDocument,
    "namespace create": NamespaceCreatedDocument,
    "namespace get": NamespaceDocument,
    "namespace delete": NamespaceDeletedDocument,
    "workers": WorkersDocument,
    "whoami": WhoamiDocument,
    "bind": BindDocument,
    "unbind": UnbindDocument,
    "secret list": SecretsDocument,
    "secret put": SecretsDocument,
    "secret delete": SecretsDocument,
    "deploy": DeployDocument,
    "apply": ApplyDocument,
    "probe": ProbeDocument,
    "doctor": DoctorDocument,
    "config validate": ConfigValidateDocument,
    "config show": ConfigShowDocument,
    "serve": ServeDocument,
    "init": InitDocument,
    "plan": PlanCommandDocument,
    "stats": StatsDocument,
    "versions": VersionsDocument,
    "promote": ReleaseDocument,
    "rollback": ReleaseDocument,
    "tail": TailLine,
    "logs": LogsDocument,
}

__all__ = ["COMMAND_MODELS", "Document", "ErrorDocument"]
