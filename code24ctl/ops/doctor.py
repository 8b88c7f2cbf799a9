"""``doctor``: check an environment end to end, one row per check, each with its fix command.

The checks run in dependency order and a check whose precondition failed is ``skip`` (a refused
token makes every API check meaningless, a missing namespace makes "worker bound" meaningless),
so the first ``fail`` is the one to fix first. A check the API refuses or fails (a token without
zone read, a 5xx that outlived the retries) is a ``fail`` row naming the API error, and the
checks after it still run. Only a network failure (the API unreachable) stops doctor: that is
exit 3 like every other command, since no row could say anything useful.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from code24ctl.cloudflare.client import api_call
from code24ctl.cloudflare.namespaces import list_namespaces
from code24ctl.cloudflare.versions import release_tag
from code24ctl.cloudflare.worker_diff import Difference
from code24ctl.config import ResolvedConfig
from code24ctl.errors import CloudflareAPIError, UsageError
from code24ctl.ops.bind import plan_bind
from code24ctl.ops.deploy import (
    deployed_dispatcher,
    dispatcher_differences,
    find_kv_namespace,
    not_serving_newest,
)
from code24ctl.ops.deploy_routes import plan_routes
from code24ctl.ops.dispatcher_worker import DISPATCHER_BINDING, build_metadata, dispatcher_module
from code24ctl.ops.doctor_report import Check, CheckName, CheckStatus, DoctorReport
from code24ctl.ops.release_state import read_release_state
from code24ctl.ops.worker_status import worker_status
from code24ctl.probe.plan import ProbeOptions
from code24ctl.probe.report import RouteResult, fallback_summary
from code24ctl.probe.runner import probe_environment

if TYPE_CHECKING:
    from code24ctl.cloudflare.session import CloudflareSession

# The API's code for "this account lacks Workers for Platforms".
WFP_NOT_AVAILABLE = 10121
TOKEN_REFUSED_STATUSES = (400, 401, 403)


class _DeployedBinding(NamedTuple):
    """The deployed dispatcher's DISPATCHER binding; ``read`` is False when it could not be read."""

    read: bool
    binding: dict[str, Any] | None = None


class Doctor:
    """One doctor run: each check adds its row to ``checks`` (``run_doctor`` and
    ``run_local_doctor`` choose which checks run, in order)."""

    def __init__(
        self, session: CloudflareSession, resolved: ResolvedConfig, base_url: str | None
    ) -> None:
        self.session = session
        self.resolved = resolved
        self.base_url = base_url
        self.env = resolved.env_name
        self.checks: list[Check] = []

    def add(
        self,
        name: str,
        status: CheckStatus,
        detail: str,
        fix: str | None = None,
        differences: list[Difference] | None = None,
    ) -> None:
        self.checks.append(
            Check(name=name, status=status, detail=detail, fix=fix, differences=differences or [])
        )

    def failed(self, name: str, exc: CloudflareAPIError) -> None:
        """A check the API refused or failed: its message (with the API code) and hint."""
        self.add(name, "fail", exc.message, exc.hint)

    def cmd(self, command: str) -> str:
        return f"code24ctl {command} --env {self.env}"

    # ------------------------------------------------------------------ the checks
    def token(self) -> bool:
        try:
            verified, kind = self._verify_token()
        except CloudflareAPIError as exc:
            if exc.status in TOKEN_REFUSED_STATUSES:
                self.add(
                    CheckName.TOKEN,
                    "fail",
                    f"Cloudflare refused the token (HTTP {exc.status})",
                    "export CLOUDFLARE_API_TOKEN=<a valid API token for this account>",
                )
            else:
                self.failed(CheckName.TOKEN, exc)
            return False
        status = getattr(verified, "status", None) or "active"
        if status != "active":
            self.add(
                CheckName.TOKEN,
                "fail",
                f"{kind} is {status}",
                "create a new API token and export CLOUDFLARE_API_TOKEN",
            )
            return False
        self.add(CheckName.TOKEN, "ok", f"{kind}, active")
        return True

    def _verify_token(self) -> tuple[Any, str]:
        try:
            with api_call("verify the API token"):
                return self.session.client.user.tokens.verify(), "user token"
        except CloudflareAPIError as exc:
            if exc.status not in TOKEN_REFUSED_STATUSES:
                raise
        # Account-owned tokens answer 401 on the user endpoint.
        with api_call("verify the API token (account-owned)"):
            verified = self.session.client.accounts.tokens.verify(
                account_id=self.session.account_id
            )
        return verified, "account-owned token"

    def account(self) -> bool:
        try:
            with api_call(f"read account {self.session.account_id}"):
                account = self.session.client.accounts.get(account_id=self.session.account_id)
        except CloudflareAPIError as exc:
            self.add(
                CheckName.ACCOUNT,
                "fail",
                f"account {self.session.account_id} is not reachable with this token "
                f"({_short(exc)})",
                "export CLOUDFLARE_ACCOUNT_ID=<the account id> (or give the token access to it)",
            )
            return False
        name = getattr(account, "name", None) or "-"
        self.add(CheckName.ACCOUNT, "ok", f"{name} ({self.session.account_id})")
        return True

    def namespaces(self) -> bool:

        namespace = self.resolved.namespace()
        try:
            names = [ns.name for ns in list_namespaces(self.session)]
        except CloudflareAPIError as exc:
            if exc.code == WFP_NOT_AVAILABLE:
                self.add(
                    CheckName.WORKERS_FOR_PLATFORMS,
                    "fail",
                    "this account does not have Workers for Platforms (API code 10121)",
                    "enable it in the dashboard: Workers & Pages > Workers for Platforms",
                )
            else:
                self.failed(CheckName.WORKERS_FOR_PLATFORMS, exc)
            self.add(CheckName.NAMESPACE, "skip", "needs Workers for Platforms")
            return False
        self.add(CheckName.WORKERS_FOR_PLATFORMS, "ok", f"available ({len(names)} namespace(s))")
        if namespace not in names:
            self.add(
                CheckName.NAMESPACE,
                "fail",
                f"dispatch namespace {namespace} does not exist",
                self.cmd("namespace create"),
            )
            return False
        self.add(CheckName.NAMESPACE, "ok", f"{namespace} exists")
        return True

    def workers(self, namespace_ok: bool) -> None:

        aliases = list(self.resolved.config.workers)
        if not namespace_ok:
            for alias in aliases:
                self.add(f"worker {alias}", "skip", "needs the namespace")
            return
        namespace = self.resolved.namespace()
        try:
            rows = worker_status(self.session, self.resolved)
        except CloudflareAPIError as exc:
            self.failed(CheckName.WORKERS, exc)
            return
        extra: list[str] = []
        bound = [row.alias for row in rows if row.status == "bound"]
        for row in rows:
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
        self.secrets(bound)
        self.workers_logs(bound)

    def workers_logs(self, bound: list[str]) -> None:
        """Each bound copy without Workers Logs: `code24ctl logs` would find nothing for it."""
        from code24ctl.cloudflare.observability import copy_observability

        namespace = self.resolved.namespace()
        off: list[str] = []
        for alias in bound:
            try:
                setting = copy_observability(self.session, namespace, alias)
            except CloudflareAPIError as exc:
                self.failed(f"workers logs {alias}", exc)
                continue
            if not setting.get("enabled"):
                off.append(alias)
        if off:
            self.add(
                "workers logs",
                "warn",
                f"Workers Logs is off for {', '.join(off)} in {namespace}: `code24ctl logs` "
                "finds nothing for them",
                f"set observability: {{enabled: true}} (platform-wide or under workers.<alias>) "
                f"in {self.resolved.path}, then {self.cmd('bind')}",
            )

    def secrets(self, bound: list[str]) -> None:
        """Each bound Worker whose source declares a secret its namespace copy lacks: a warning
        naming the ``secret put`` to run (values are never readable, so never copied)."""

        if not bound:
            return
        plan = plan_bind(self.session, self.resolved, bound, existing=set(bound))
        for row in plan.rows:
            if row.dropped_schedules:
                self.add(
                    f"schedules {row.alias}",
                    "warn",
                    f"{row.source} runs on cron schedules ({', '.join(row.dropped_schedules)}); "
                    f"its copy in {plan.namespace} keeps none",
                )
            for name in row.secrets_shadowed:
                self.add(
                    f"secret {row.alias} {name}",
                    "warn",
                    f"secret → plain_text: the copy in {plan.namespace} holds secret {name}, "
                    f"and {row.source} binds {name} as a plain value; a bind refuses to "
                    "replace it",
                    f"rename or remove {name} in {row.source}, or "
                    + self.cmd(f"bind {row.alias}")
                    + " --force to replace the secret",
                )
            for name in row.secrets_to_set:
                self.add(
                    f"secret {row.alias} {name}",
                    "warn",
                    f"{row.source} declares secret {name}; the copy in "
                    f"{plan.namespace} does not have it",
                    self.cmd(f"secret put {row.alias} {name}"),
                )

    def dispatcher(self) -> _DeployedBinding:
        """Compare the deployed dispatcher with what deploy would upload now."""
        name = self.resolved.dispatcher()
        try:
            deployed = deployed_dispatcher(self.session, name)
        except CloudflareAPIError as exc:
            self.failed(CheckName.DISPATCHER, exc)
            return _DeployedBinding(read=False)
        if deployed is None:
            self.add(CheckName.DISPATCHER, "fail", f"{name} is not deployed", self.cmd("deploy"))
            return _DeployedBinding(read=True)
        self.dispatcher_logs(name, deployed.settings.get("observability"))
        found = next((b for b in deployed.bindings if b.get("name") == DISPATCHER_BINDING), None)
        binding = _DeployedBinding(read=True, binding=dict(found) if found is not None else None)
        kv_title = self.resolved.environment.kv_namespace
        try:
            kv_id = find_kv_namespace(self.session, kv_title) if kv_title else None
        except CloudflareAPIError as exc:
            self.failed(CheckName.DISPATCHER, exc)
            return binding
        expected = build_metadata(self.resolved, kv_id)
        differences = dispatcher_differences(deployed, expected, dispatcher_module())
        missing_kv = (
            f"; KV namespace {kv_title} does not exist" if kv_title and kv_id is None else ""
        )
        stale = None
        if not differences and not missing_kv:
            # As plan does: after a failed probe the content read may be the newest upload's.
            try:
                stale = not_serving_newest(self.session, name, release_tag(expected["bindings"]))
            except CloudflareAPIError as exc:
                self.failed(CheckName.DISPATCHER, exc)
                return binding
        if stale is not None:
            self.add(
                CheckName.DISPATCHER,
                "warn",
                f"{name}: {stale}, so what serves may not be what the config says",
                self.cmd("deploy"),
            )
        elif not differences and not missing_kv:
            self.add(CheckName.DISPATCHER, "ok", f"{name} deployed with the expected bindings")
        elif not missing_kv and all(found.field == "modules" for found in differences):
            self.add(
                CheckName.DISPATCHER,
                "warn",
                f"{name}: its code differs from this code24ctl's dispatcher "
                "(an older code24ctl deployed it?)",
                self.cmd("deploy"),
                differences,
            )
        else:
            count = len(differences)
            self.add(
                CheckName.DISPATCHER,
                "fail",
                f"{name}: {count} difference{'s' if count != 1 else ''} from what deploy "
                f"would upload{missing_kv}",
                self.cmd("deploy"),
                differences,
            )
        return binding

    def dispatcher_logs(self, name: str, setting: object) -> None:
        """The dispatcher without Workers Logs: `code24ctl logs --request-id` cannot show its
        own line for a request (the workers' lines, yes)."""
        if isinstance(setting, Mapping) and setting.get("enabled"):
            return
        wanted = self.resolved.config.observability
        if wanted is not None and wanted.enabled:
            fix = self.cmd("deploy") + "  (the config turns it on)"
        else:
            fix = (
                "set observability: {enabled: true} (platform-wide) in "
                f"{self.resolved.path}, then {self.cmd('deploy')}"
            )
        self.add(
            "dispatcher logs",
            "warn",
            f"Workers Logs is off for the dispatcher {name}: `code24ctl logs --request-id` "
            "cannot show the dispatcher's own line for a request",
            fix,
        )

    def deployment(self) -> None:
        """A deployment split between two versions is a rollout someone has to finish."""

        try:
            state = read_release_state(self.session, self.resolved)
        except CloudflareAPIError as exc:
            self.failed(CheckName.DEPLOYMENT, exc)
            return
        if state.kind == "split":
            self.add(
                CheckName.DEPLOYMENT,
                "warn",
                f"{state.words} (an unfinished gradual rollout or canary)",
                f"{self.cmd('promote')}  (or {self.cmd('rollback')})",
            )

    def routes(self) -> None:
        environment = self.resolved.environment
        dispatcher = self.resolved.dispatcher()
        if not environment.routes:
            self.add(CheckName.ROUTES, "warn", "the environment configures no routes")
            return
        try:
            # Without --force, deploy's plan calls a route owned by another Worker a conflict.
            changes = plan_routes(
                self.session,
                environment.routes,
                dispatcher,
                force=False,
                zone=environment.zone,
            )
        except CloudflareAPIError as exc:
            self.failed(CheckName.ROUTES, exc)
            return
        for change in changes:
            name = f"route {change.pattern}"
            if change.action == "unchanged":
                self.add(name, "ok", f"routed to {dispatcher}")
            elif change.action == "create":
                self.add(name, "fail", f"missing on zone {change.zone}", self.cmd("deploy"))
            else:
                self.add(
                    name,
                    "fail",
                    f"routed to {change.owner or 'no Worker'}, not {dispatcher}",
                    self.cmd("deploy --force"),
                )

    def outbound(self, deployed: _DeployedBinding) -> None:
        # The config cannot name the dispatcher as its own outbound Worker (validation refuses
        # it); what is left to check is a loop in what is actually deployed.
        dispatcher = self.resolved.dispatcher()
        configured = self.resolved.environment.outbound
        if not deployed.read:
            self.add(CheckName.OUTBOUND, "skip", "needs the deployed dispatcher's settings")
            return
        outbound = (deployed.binding or {}).get("outbound") or {}
        if (outbound.get("worker") or {}).get("service") == dispatcher:
            self.add(
                CheckName.OUTBOUND,
                "fail",
                f"the deployed DISPATCHER binding sends outbound traffic to {dispatcher} itself",
                self.cmd("deploy"),
            )
        elif configured is not None:
            self.add(CheckName.OUTBOUND, "ok", f"{configured.worker} (not the dispatcher)")
        else:
            self.add(CheckName.OUTBOUND, "ok", "no outbound Worker configured")

    def probe(self) -> None:

        try:
            report = probe_environment(self.resolved, ProbeOptions(base_url=self.base_url))
        except UsageError as exc:
            self.add(CheckName.PROBE, "skip", exc.message)
            return
        fix = self.cmd("probe") + (f" --base-url {self.base_url}" if self.base_url else "")
        if report.ok:
            passed = report.summary.passed
            said = f"{passed} route(s) answer JSON at {report.base_url}"
            fallbacks = fallback_summary(report.routes)
            if fallbacks:
                warned = [r for r in report.routes if r.warnings]
                fix += self._see_why(warned)
                self.add(CheckName.PROBE, "warn", f"{said}; {fallbacks}", fix)
            else:
                self.add(CheckName.PROBE, "ok", said)
            return
        bad = [r for r in report.routes if r.outcome == "fail"]
        named = ", ".join(f"{r.route} {r.verdict}" for r in bad)
        self.add(
            CheckName.PROBE,
            "fail",
            f"{len(bad)} of {report.summary.routes} route(s) failing at {report.base_url}: {named}",
            fix + self._see_why(bad),
        )

    def _see_why(self, rows: list[RouteResult]) -> str:
        # A local environment has no Workers Logs: `logs --env local` is refused (exit 2), so
        # naming it there would send the operator to a dead end.
        if self.resolved.is_local:
            return ""
        from code24ctl.ops.logs import logs_command

        workers = list(dict.fromkeys(row.worker for row in rows))
        return f"; see why: {logs_command(self.env, workers, errors_only=True, since='15m')}"


def run_doctor(
    session: CloudflareSession,
    resolved: ResolvedConfig,
    *,
    base_url: str | None = None,
) -> DoctorReport:
    """Run every check against the environment; never raises for a failed check.

    A check the API refuses or fails becomes a ``fail`` row. Raises
    :class:`~code24ctl.errors.NetworkError` when the API cannot be reached at all, and
    :class:`~code24ctl.errors.UsageError` for a local environment.
    """
    resolved.require_cloudflare()
    doctor = Doctor(session, resolved, base_url)
    if doctor.token() and doctor.account():
        namespace_ok = doctor.namespaces()
        doctor.workers(namespace_ok)
        deployed = doctor.dispatcher()
        if deployed.read:
            doctor.deployment()
        doctor.routes()
        doctor.outbound(deployed)
    else:
        for name in (
            CheckName.WORKERS_FOR_PLATFORMS,
            CheckName.NAMESPACE,
            CheckName.WORKERS,
            CheckName.DISPATCHER,
            CheckName.ROUTES,
            CheckName.OUTBOUND,
        ):
            doctor.add(name, "skip", "needs a valid token and a reachable account")
    doctor.probe()
    return DoctorReport.of(resolved.env_name, doctor.checks)


def _short(exc: CloudflareAPIError) -> str:
    return exc.message.split(": ", 1)[-1] if ": " in exc.message else exc.message
