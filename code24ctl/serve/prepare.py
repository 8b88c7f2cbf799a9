"""Everything ``code24ctl serve`` decides before it listens, for either runtime.

The CLI parses options into a :class:`ServeRequest`; :func:`prepare_serve` finds the config
(the built-in one for ``--demo`` where there is none), loads the environment, checks the
options, and returns a :class:`PreparedServe` with the notes to show; :func:`run_prepared`
runs it with the Python runtime (the dispatch rules in Python, in front of upstream URLs) or
the workerd runtime (``dispatcher.js`` and the workers' own code, :mod:`.workerd`).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from code24ctl.config import ResolvedConfig, builtin_config_path, config_path_from
from code24ctl.config.environments import resolve_environment
from code24ctl.constants import CONFIG_ENV_VAR, DEFAULT_CONFIG_PATH
from code24ctl.errors import UsageError
from code24ctl.serve.access_log import ACCESS_LOG_FORMATS, AccessLog
from code24ctl.serve.limits import ClientLimits

if TYPE_CHECKING:
    from code24ctl.cloudflare.worker_code import WorkerCode
    from code24ctl.serve.app import ServeSettings
    from code24ctl.serve.server import ReloadOutcome, ServeInfo
    from code24ctl.serve.workerd.plan import WorkerdPlan

Runtime = Literal["python", "workerd"]
RUNTIMES: tuple[Runtime, ...] = ("python", "workerd")
SERVE_DEFAULT_ENV = "local"


@dataclass(frozen=True)
class ServeRequest:
    """What the user asked of ``serve`` (the CLI's options, parsed)."""

    config: str | None
    env: str | None
    host: str
    port: int | None = None
    demo: bool = False
    demo_ports: str | None = None
    access_log: str = "text"
    metrics_port: int | None = None
    watch: bool = False
    limits: ClientLimits = field(default_factory=ClientLimits)
    runtime: str = "python"
    from_account: str | None = None


@dataclass
class PreparedServe:
    """A serve ready to run: its config, port, notes to show first, and how to reload."""

    request: ServeRequest
    resolved: ResolvedConfig
    config_file: str
    listen_port: int
    runtime: Runtime
    notes: list[str] = field(default_factory=list)
    demo_ports: int | None = None
    settings: ServeSettings | None = None
    plan: WorkerdPlan | None = None
    #: ``--from-account``: the code read from the account, per alias (None: not held there).
    account_code: Mapping[str, WorkerCode | None] | None = None
    #: ``--from-account``: the account's outbound Worker (name, code, params), if it has one.
    account_outbound: tuple[str, WorkerCode, list[str]] | None = None


def demo_ports(value: str | None) -> int | None:
    """``--demo-ports``: None (configured ports), 0 (``auto``) or a first port."""
    if value is None:
        return None
    if value == "auto":
        return 0
    if value.isdigit() and 1 <= int(value) <= 65535:
        return int(value)
    raise UsageError(f"--demo-ports {value!r} is not a port number or 'auto'")


def prepare_serve(request: ServeRequest) -> PreparedServe:
    """Check the request and load what it serves (every refusal is a UsageError, exit 2)."""
    from code24ctl.serve.server import default_port, is_loopback, settings_from_config

    if request.runtime not in RUNTIMES:
        raise UsageError(f"--runtime {request.runtime!r} is not one of {', '.join(RUNTIMES)}")
    runtime: Runtime = "workerd" if request.runtime == "workerd" else "python"
    if request.from_account is not None and runtime != "workerd":
        raise UsageError(
            "--from-account runs the account's code, which only the workerd runtime can",
            hint="add --runtime workerd",
        )
    notes: list[str] = []
    config = request.config
    explicit = config is not None or bool(os.environ.get(CONFIG_ENV_VAR))
    if not explicit and not os.path.exists(config_path_from(None)):
        if not request.demo:
            raise UsageError(
                f"no ./{DEFAULT_CONFIG_PATH} here, and no --config or {CONFIG_ENV_VAR}",
                hint="`code24ctl serve --demo` runs the built-in Code24 config with sample "
                "workers; `code24ctl init` writes a starter config",
            )
        # The demo must run anywhere after install: fall back to the Code24 config we ship.
        config = builtin_config_path()
        notes.append(
            f"no ./{DEFAULT_CONFIG_PATH} here: using the built-in Code24 config ({config})"
        )
    if request.access_log not in ACCESS_LOG_FORMATS:
        raise UsageError(
            f"--access-log {request.access_log!r} is not one of {', '.join(ACCESS_LOG_FORMATS)}"
        )
    if request.demo_ports is not None and not request.demo:
        raise UsageError("--demo-ports only applies with --demo")
    if request.demo_ports is not None and runtime == "workerd":
        raise UsageError(
            "--demo-ports only applies to the Python runtime (workerd runs the demo Workers "
            "inside itself, on no port)"
        )
    first_demo_port = demo_ports(request.demo_ports)
    config_file = config_path_from(config)
    resolved = resolve_environment(config_file, request.env, command_default=SERVE_DEFAULT_ENV)
    settings = settings_from_config(resolved)
    limited = sorted(alias for alias, policy in settings.table.workers.items() if policy.limits)
    if limited and runtime == "python":
        notes.append(
            f"note: serve cannot measure CPU time or count subrequests; the limits of "
            f"{', '.join(limited)} apply on Cloudflare only (a worker answering "
            "'error code: 1102' still gets worker_over_limit)"
        )
    if not is_loopback(request.host):
        notes.append(
            f"warning: listening on {request.host}, not loopback: other machines can reach "
            "this dispatcher and the workers behind it"
        )
    base_port = default_port(resolved)
    return PreparedServe(
        request=request,
        resolved=resolved,
        config_file=str(config_file),
        listen_port=base_port if request.port is None else request.port,
        runtime=runtime,
        notes=notes,
        demo_ports=first_demo_port,
        settings=settings,
    )


def account_environment(prepared: PreparedServe) -> ResolvedConfig:
    """``--from-account ENV``: that Cloudflare environment of the same config."""
    assert prepared.request.from_account is not None
    resolved = resolve_environment(prepared.config_file, prepared.request.from_account)
    resolved.require_cloudflare()
    return resolved


def wants_account_outbound(prepared: PreparedServe, account: ResolvedConfig) -> bool:
    """``--from-account``: whether the account's outbound Worker is to be read (it has one, and
    the local environment gives none a ``path``)."""
    local = prepared.resolved.environment.outbound
    return (
        not prepared.request.demo
        and account.environment.outbound is not None
        and (local is None or local.path is None)
    )


def account_aliases(prepared: PreparedServe) -> list[str]:
    """``--from-account``: the aliases whose code comes from the account (those with neither
    ``path`` nor an upstream URL; none with ``--demo``)."""
    if prepared.request.demo:
        return []
    upstreams = prepared.resolved.environment.upstreams or {}
    return [
        alias
        for alias, worker in sorted(prepared.resolved.config.workers.items())
        if worker.path is None and alias not in upstreams
    ]


def plan_workerd(prepared: PreparedServe) -> WorkerdPlan:
    """The workerd plan of the prepared config (again, on each reload)."""
    from code24ctl.serve.workerd.plan import build_plan

    return build_plan(
        prepared.resolved,
        demo=prepared.request.demo,
        account_code=prepared.account_code,
        account_outbound=prepared.account_outbound,
    )


def run_prepared(
    prepared: PreparedServe,
    *,
    on_ready: Callable[[ServeInfo], None],
    progress: Callable[[str], None],
    access_log: AccessLog | None = None,
) -> AccessLog:
    """Run the prepared serve until SIGINT/SIGTERM; returns its access log (to flush).

    ``progress`` gets the workerd plan's notes and the lines of a first-use miniflare install
    (workerd runtime). Reloads
    (SIGHUP, ``--watch``) are reported on the access log's stream.
    """
    from code24ctl.serve.server import ServeOptions, run_serve, settings_from_config

    request = prepared.request
    # Once serving, stderr may stop being read: every later line goes through the log's
    # writer, which never blocks serve.
    log = access_log or AccessLog(request.access_log, sys.stderr)  # type: ignore[arg-type]
    config_file, env_name = prepared.config_file, prepared.resolved.env_name

    def reloaded(outcome: ReloadOutcome) -> None:
        if outcome.error is None:
            log.message(f"reloaded {config_file}: {outcome.routes} routes")
            if outcome.dropped:
                log.message(
                    f"warning: the reload dropped {len(outcome.dropped)} route(s), which now "
                    f"answer route_not_found: {', '.join(outcome.dropped)}"
                )
            if outcome.note:
                log.message(f"warning: {outcome.note}")
        else:
            log.message(
                f"warning: reload of {config_file} failed, still serving the previous config "
                f"({outcome.routes} routes): {outcome.error}"
            )

    def reload_resolved() -> ResolvedConfig:
        return resolve_environment(config_file, env_name, command_default=SERVE_DEFAULT_ENV)

    if prepared.runtime == "workerd":
        from code24ctl.serve.workerd.node import node_runtime
        from code24ctl.serve.workerd.runtime import WorkerdOptions, run_workerd_serve

        plan = prepared.plan or plan_workerd(prepared)
        prepared.plan = plan
        for line in plan.notes:
            progress(line)
        node = node_runtime(progress)

        def reload_plan() -> WorkerdPlan:
            prepared.resolved = reload_resolved()
            return plan_workerd(prepared)

        run_workerd_serve(
            plan,
            host=request.host,
            port=prepared.listen_port,
            access_log=log,
            on_ready=on_ready,
            options=WorkerdOptions(
                node=node,
                admin_port=request.metrics_port,
                metrics=request.metrics_port is not None,
                reload=reload_plan,
                watch=request.watch,
            ),
            on_reload=reloaded,
        )
        return log

    def reload() -> ServeSettings:
        return settings_from_config(reload_resolved())

    assert prepared.settings is not None
    run_serve(
        prepared.settings,
        host=request.host,
        port=prepared.listen_port,
        demo=request.demo,
        access_log=log,
        on_ready=on_ready,
        options=ServeOptions(
            demo_ports=prepared.demo_ports,
            limits=request.limits,
            admin_port=request.metrics_port,
            metrics=request.metrics_port is not None,
            reload=reload,
            watch=config_file if request.watch else None,
        ),
        on_reload=reloaded,
    )
    return log
