"""Pydantic models of every command's ``--json`` document (the README's JSON contract).

Each is a :class:`~code24ctl.cli.documents.Document` (``command``, ``environment``,
``namespace``) plus the command's own fields; lists sit under plural keys and counts under
``summary``. :data:`COMMAND_MODELS` maps each command, as typed, to its model; the tests
validate every command's output, success and failure, against it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from code24ctl.cli.documents import Document, ErrorDocument
from code24ctl.cloudflare.namespaces import NamespaceInfo
from code24ctl.ops.apply import ApplyResult, PlanDocument
from code24ctl.ops.bind import ApiUsage, BindRow, UnbindRow, WorkerStatusRow
from code24ctl.ops.deploy import DeployReport
from code24ctl.ops.doctor import Check
from code24ctl.ops.release import ReleaseReport, VersionsReport
from code24ctl.ops.stats import StatsReport
from code24ctl.ops.tail import TailEvent
from code24ctl.probe.runner import ProbeReport

Summary = dict[str, int]


class NamespaceListDocument(Document):
    """``namespace list``: every dispatch namespace on the account."""

    namespaces: list[NamespaceInfo]
    summary: Summary


class NamespaceDocument(Document):
    """``namespace create|get|delete``: one namespace (``namespace`` is its name)."""

    id: str | None
    script_count: int | None
    created_on: datetime | None
    modified_on: datetime | None
    trusted_workers: bool | None
    created: bool | None = None  # create: whether this call made it
    deleted: bool | None = None  # delete
    secrets: int | None = None  # delete: how many secrets went with its Workers (None: unknown)


class WorkerRow(WorkerStatusRow):
    """A row of ``workers``: the status, and the secrets the namespace's copy still lacks."""

    secrets_missing: list[str] = Field(default_factory=list)


class WorkersDocument(Document):
    """``workers``: configured aliases against the namespace's Workers."""

    workers: list[WorkerRow]
    summary: Summary


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


class ConfigValidateDocument(Document):
    """``config validate``: what the file defines."""

    path: str
    valid: bool
    platform: str
    default_env: str | None
    workers: list[str]
    routes: list[str]
    environments: list[str]
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


class InitDocument(Document):
    """``init``: the starter config written."""

    path: str
    written: bool


class PlanCommandDocument(Document, PlanDocument):
    """``plan``: every change apply would make, the problems that stop it, what it read."""


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
    "namespace create": NamespaceDocument,
    "namespace get": NamespaceDocument,
    "namespace delete": NamespaceDocument,
    "workers": WorkersDocument,
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
}

__all__ = ["COMMAND_MODELS", "Document", "ErrorDocument"]
