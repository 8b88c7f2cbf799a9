"""``doctor``: check an environment end to end, one row per check, each with its fix command.

The checks run in dependency order and a check whose precondition failed is ``skip`` (a refused
token makes every API check meaningless, a missing namespace makes "worker bound" meaningless),
so the first ``fail`` is the one to fix first. Only a network failure (the API unreachable)
stops doctor: that is exit 3 like every other command, since no row could say anything useful.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel

from code24ctl.cloudflare_api import api_call
from code24ctl.config import ResolvedConfig
from code24ctl.deploy import (
    DISPATCHER_BINDING,
    ZoneResolver,
    build_metadata,
    deployed_dispatcher,
    dispatcher_differences,
    dispatcher_module,
    find_kv_namespace,
    list_routes,
)
from code24ctl.errors import CloudflareAPIError, UsageError

if TYPE_CHECKING:
    from cloudflare import Cloudflare

    from code24ctl.probe import ProbeReport

CheckStatus = Literal["ok", "warn", "fail", "skip"]
# The API's code for "this account lacks Workers for Platforms".
WFP_NOT_AVAILABLE = 10121
TOKEN_REFUSED_STATUSES = (400, 401, 403)


class Check(BaseModel):
    """One line of the doctor's report."""

    name: str
    status: CheckStatus
    detail: str
    fix: str | None = None


class DoctorReport(BaseModel):
    """Every check, in order; ``ok`` is False when any check failed (exit 1)."""

    environment: str
    ok: bool
    counts: dict[str, int]
    checks: list[Check]


ProbeRunner = Callable[[ResolvedConfig, str | None], "ProbeReport"]


def run_probe(resolved: ResolvedConfig, base_url: str | None) -> ProbeReport:
    """Probe every route of the environment (``base_url`` overrides the config's)."""
    from code24ctl.probe import ProbeOptions, probe_environment

    return probe_environment(resolved, ProbeOptions(base_url=base_url))


class _Doctor:
    def __init__(
        self, client: Cloudflare, account_id: str, resolved: ResolvedConfig, base_url: str | None
    ) -> None:
        self.client = client
        self.account_id = account_id
        self.resolved = resolved
        self.base_url = base_url
        self.env = resolved.env_name
        self.checks: list[Check] = []

    def add(self, name: str, status: CheckStatus, detail: str, fix: str | None = None) -> None:
        self.checks.append(Check(name=name, status=status, detail=detail, fix=fix))

    def cmd(self, command: str) -> str:
        return f"code24ctl {command} --env {self.env}"

    # ------------------------------------------------------------------ the checks
    def token(self) -> bool:
        try:
            with api_call("verify the API token"):
                verified: Any = self.client.user.tokens.verify()
            kind = "user token"
        except CloudflareAPIError as exc:
            if exc.status not in TOKEN_REFUSED_STATUSES:
                raise
            # Account-owned tokens answer 401 on the user endpoint.
            try:
                with api_call("verify the API token (account-owned)"):
                    verified = self.client.accounts.tokens.verify(account_id=self.account_id)
                kind = "account-owned token"
            except CloudflareAPIError as again:
                if again.status not in TOKEN_REFUSED_STATUSES:
                    raise
                self.add(
                    "token",
                    "fail",
                    f"Cloudflare refused the token (HTTP {again.status})",
                    "export CLOUDFLARE_API_TOKEN=<a valid API token for this account>",
                )
                return False
        status = getattr(verified, "status", None) or "active"
        if status != "active":
            self.add(
                "token",
                "fail",
                f"{kind} is {status}",
                "create a new API token and export CLOUDFLARE_API_TOKEN",
            )
            return False
        self.add("token", "ok", f"{kind}, active")
        return True

    def account(self) -> bool:
        try:
            with api_call(f"read account {self.account_id}"):
                account = self.client.accounts.get(account_id=self.account_id)
        except CloudflareAPIError as exc:
            self.add(
                "account",
                "fail",
                f"account {self.account_id} is not reachable with this token ({_short(exc)})",
                "export CLOUDFLARE_ACCOUNT_ID=<the account id> (or give the token access to it)",
            )
            return False
        name = getattr(account, "name", None) or "-"
        self.add("account", "ok", f"{name} ({self.account_id})")
        return True

    def namespaces(self) -> bool:
        from code24ctl.namespaces import list_namespaces

        namespace = self.resolved.namespace()
        try:
            names = [ns.name for ns in list_namespaces(self.client, self.account_id)]
        except CloudflareAPIError as exc:
            if exc.code == WFP_NOT_AVAILABLE:
                self.add(
                    "workers for platforms",
                    "fail",
                    "this account does not have Workers for Platforms (API code 10121)",
                    "enable it in the dashboard: Workers & Pages > Workers for Platforms",
                )
            else:
                self.add("workers for platforms", "fail", _short(exc), exc.hint)
            self.add("namespace", "skip", "needs Workers for Platforms")
            return False
        self.add("workers for platforms", "ok", f"available ({len(names)} namespace(s))")
        if namespace not in names:
            self.add(
                "namespace",
                "fail",
                f"dispatch namespace {namespace} does not exist",
                self.cmd("namespace create"),
            )
            return False
        self.add("namespace", "ok", f"{namespace} exists")
        return True

    def workers(self, namespace_ok: bool) -> None:
        from code24ctl.binding import worker_status

        aliases = list(self.resolved.config.workers)
        if not namespace_ok:
            for alias in aliases:
                self.add(f"worker {alias}", "skip", "needs the namespace")
            return
        namespace = self.resolved.namespace()
        extra: list[str] = []
        for row in worker_status(self.client, self.account_id, self.resolved):
            if row.status == "bound":
                self.add(f"worker {row.alias}", "ok", f"bound in {namespace}")
            elif row.status == "missing":
                self.add(
                    f"worker {row.alias}",
                    "fail",
                    f"not in {namespace} ({row.source})",
                    self.cmd(f"bind {row.alias}"),
                )
            else:
                extra.append(row.alias)
        if extra:
            self.add(
                "workers not in config",
                "warn",
                f"{namespace} also holds {', '.join(extra)}",
                self.cmd(f"unbind {' '.join(extra)}") + "  (if they are not needed)",
            )

    def dispatcher(self) -> dict[str, Any] | None:
        """Check the deployed dispatcher; returns its DISPATCHER binding when deployed."""
        name = self.resolved.dispatcher()
        deployed = deployed_dispatcher(self.client, self.account_id, name)
        if deployed is None:
            self.add("dispatcher", "fail", f"{name} is not deployed", self.cmd("deploy"))
            return None
        kv_title = self.resolved.environment.kv_namespace
        kv_id = find_kv_namespace(self.client, self.account_id, kv_title) if kv_title else None
        expected = build_metadata(self.resolved, kv_id)
        differences = dispatcher_differences(deployed, expected, dispatcher_module())
        if kv_title and kv_id is None:
            differences.append(f"KV namespace {kv_title} does not exist")
        binding = next((b for b in deployed.bindings if b.get("name") == DISPATCHER_BINDING), None)
        if not differences:
            self.add("dispatcher", "ok", f"{name} deployed with the expected bindings")
        elif all(d.startswith("code differs") for d in differences):
            self.add(
                "dispatcher",
                "warn",
                f"{name}: {'; '.join(differences)} (an older code24ctl deployed it?)",
                self.cmd("deploy"),
            )
        else:
            self.add("dispatcher", "fail", f"{name}: {'; '.join(differences)}", self.cmd("deploy"))
        return dict(binding) if binding is not None else None

    def routes(self) -> None:
        environment = self.resolved.environment
        dispatcher = self.resolved.dispatcher()
        if not environment.routes:
            self.add("routes", "warn", "the environment configures no routes")
            return
        resolver = ZoneResolver(self.client, environment.zone)
        listed: dict[str, dict[str, str | None]] = {}
        for pattern in environment.routes:
            name = f"route {pattern}"
            try:
                zone = resolver.for_pattern(pattern)
            except CloudflareAPIError as exc:
                self.add(name, "fail", exc.message, exc.hint)
                continue
            if zone.id not in listed:
                listed[zone.id] = {p: s for _, p, s in list_routes(self.client, zone)}
            if pattern not in listed[zone.id]:
                self.add(name, "fail", f"missing on zone {zone.name}", self.cmd("deploy"))
                continue
            owner = listed[zone.id][pattern]
            if owner == dispatcher:
                self.add(name, "ok", f"routed to {dispatcher}")
            else:
                self.add(
                    name,
                    "fail",
                    f"routed to {owner or 'no Worker'}, not {dispatcher}",
                    self.cmd("deploy --force"),
                )

    def outbound(self, deployed_binding: dict[str, Any] | None) -> None:
        dispatcher = self.resolved.dispatcher()
        configured = self.resolved.environment.outbound
        deployed = None
        if deployed_binding is not None:
            outbound = deployed_binding.get("outbound") or {}
            deployed = (outbound.get("worker") or {}).get("service")
        fix = (
            f"set environments.{self.env}.outbound.worker to another Worker (or remove it) "
            f"in {self.resolved.path}, then {self.cmd('deploy')}"
        )
        if configured is not None and configured.worker == dispatcher:
            self.add(
                "outbound",
                "fail",
                f"the outbound Worker is the dispatcher {dispatcher} itself: "
                "every subrequest of a worker would loop back into the dispatcher",
                fix,
            )
        elif deployed == dispatcher:
            self.add(
                "outbound",
                "fail",
                f"the deployed DISPATCHER binding sends outbound traffic to {dispatcher} itself",
                self.cmd("deploy"),
            )
        elif configured is not None:
            self.add("outbound", "ok", f"{configured.worker} (not the dispatcher)")
        else:
            self.add("outbound", "ok", "no outbound Worker configured")

    def probe(self, runner: ProbeRunner) -> None:
        try:
            report = runner(self.resolved, self.base_url)
        except UsageError as exc:
            self.add("probe", "skip", exc.message)
            return
        fix = self.cmd("probe") + (f" --base-url {self.base_url}" if self.base_url else "")
        if report.ok:
            passed = report.summary.passed
            self.add("probe", "ok", f"{passed} route(s) answer JSON at {report.base_url}")
            return
        bad = [r for r in report.routes if r.outcome == "fail"]
        named = ", ".join(f"{r.route} {r.verdict}" for r in bad)
        self.add(
            "probe",
            "fail",
            f"{len(bad)} of {report.summary.routes} route(s) failing at {report.base_url}: {named}",
            fix,
        )


def run_doctor(
    client: Cloudflare,
    account_id: str,
    resolved: ResolvedConfig,
    *,
    base_url: str | None = None,
    probe: ProbeRunner = run_probe,
) -> DoctorReport:
    """Run every check against the environment; never raises for a failed check.

    Raises :class:`~code24ctl.errors.NetworkError` when the API cannot be reached at all, and
    :class:`~code24ctl.errors.UsageError` for a local environment.
    """
    resolved.require_cloudflare()
    doctor = _Doctor(client, account_id, resolved, base_url)
    api_ok = doctor.token() and doctor.account()
    deployed_binding: dict[str, Any] | None = None
    if api_ok:
        namespace_ok = doctor.namespaces()
        doctor.workers(namespace_ok)
        deployed_binding = doctor.dispatcher()
        doctor.routes()
    else:
        for name in ("workers for platforms", "namespace", "workers", "dispatcher", "routes"):
            doctor.add(name, "skip", "needs a valid token and a reachable account")
    doctor.outbound(deployed_binding)
    doctor.probe(probe)
    counts = {status: 0 for status in ("ok", "warn", "fail", "skip")}
    for check in doctor.checks:
        counts[check.status] += 1
    return DoctorReport(
        environment=resolved.env_name,
        ok=counts["fail"] == 0,
        counts=counts,
        checks=doctor.checks,
    )


def _short(exc: CloudflareAPIError) -> str:
    return exc.message.split(": ", 1)[-1] if ": " in exc.message else exc.message
