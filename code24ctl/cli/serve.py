"""``code24ctl serve``: run the dispatch rules locally in front of the local upstreams."""

from __future__ import annotations

import os
import shlex
import sys
from typing import TYPE_CHECKING, Annotated

import typer

from code24ctl.cli.globals import COMMAND_ENV_DEFAULTS
from code24ctl.cli.options import ConfigOption, EnvOption, JsonOption, load
from code24ctl.cli.output import note, stderr
from code24ctl.constants import CONFIG_ENV_VAR, DEFAULT_CONFIG_PATH, SERVE_DEFAULT_HOST
from code24ctl.errors import UsageError

if TYPE_CHECKING:
    from code24ctl.serve.app import ServeSettings
    from code24ctl.serve.server import ServeInfo

HostOption = Annotated[
    str,
    typer.Option(
        "--host",
        metavar="ADDRESS",
        help="address to listen on (anything but loopback is reachable from other machines)",
    ),
]
PortOption = Annotated[
    int | None,
    typer.Option(
        "--port",
        "-p",
        metavar="PORT",
        min=0,
        max=65535,
        help="port to listen on [default: the port of the environment's base_url, 8787]",
    ),
]
DemoOption = Annotated[
    bool,
    typer.Option(
        "--demo",
        metavar="",
        help="also start built-in sample workers for every alias (one answers an HTML "
        "error page, to show the JSON fallback)",
    ),
]
AccessLogOption = Annotated[
    str,
    typer.Option(
        "--access-log",
        metavar="text|json|off",
        help="one line per request on stderr: method, path, worker, status, fallback, ms",
    ),
]

DemoPortsOption = Annotated[
    str | None,
    typer.Option(
        "--demo-ports",
        metavar="PORT|auto",
        help="with --demo: sample workers on consecutive ports from PORT, or any free ports "
        "(auto) [default: each alias's configured upstream port, any free one if busy]",
    ),
]
MetricsPortOption = Annotated[
    int | None,
    typer.Option(
        "--metrics-port",
        metavar="PORT",
        min=0,
        max=65535,
        help="admin port (same address as --host): Prometheus metrics on /metrics and a "
        "health check on /healthz, outside the routed space",
    ),
]
WatchOption = Annotated[
    bool,
    typer.Option(
        "--watch",
        metavar="",
        help="reload when the config file changes (SIGHUP always reloads); a config that "
        "does not load is reported and the running one keeps serving",
    ),
]
MaxHeaderBytesOption = Annotated[
    int,
    typer.Option(
        "--max-header-bytes", metavar="BYTES", min=1024, help="request line + headers (431 past it)"
    ),
]
MaxUrlBytesOption = Annotated[
    int,
    typer.Option(
        "--max-url-bytes",
        metavar="BYTES",
        min=256,
        help="request target (414 past it)",
    ),
]
HeaderTimeoutOption = Annotated[
    float,
    typer.Option(
        "--header-timeout",
        metavar="SECONDS",
        min=0.1,
        help="time to send the headers (408 past it)",
    ),
]
IdleTimeoutOption = Annotated[
    float,
    typer.Option(
        "--idle-timeout",
        metavar="SECONDS",
        min=0.1,
        help="an idle keep-alive connection is closed after it",
    ),
]
MaxConnectionsOption = Annotated[
    int | None,
    typer.Option(
        "--max-connections",
        metavar="N",
        min=1,
        help="open client connections (503 past it) [default: 1024, fewer if the open-file "
        "limit cannot hold twice that]",
    ),
]


def serve(
    config: ConfigOption = None,
    env: EnvOption = None,
    host: HostOption = SERVE_DEFAULT_HOST,
    port: PortOption = None,
    demo: DemoOption = False,
    demo_ports: DemoPortsOption = None,
    access_log: AccessLogOption = "text",
    metrics_port: MetricsPortOption = None,
    watch: WatchOption = False,
    max_header_bytes: MaxHeaderBytesOption = 64 * 1024,
    max_url_bytes: MaxUrlBytesOption = 16 * 1024,
    header_timeout: HeaderTimeoutOption = 10.0,
    idle_timeout: IdleTimeoutOption = 5.0,
    max_connections: MaxConnectionsOption = None,
    json_output: JsonOption = False,
) -> None:
    """Run the dispatch logic locally (--demo: with built-in sample workers).

    The environment defaults to local (serve only runs environments with upstreams). Listens
    until Ctrl+C or SIGTERM, then finishes in-flight requests and exits 0; SIGHUP reloads the
    config. With --json, one JSON document describing what runs is printed on stdout once it
    is ready.
    """
    from code24ctl.config import config_path_from
    from code24ctl.serve.access_log import ACCESS_LOG_FORMATS, AccessLog
    from code24ctl.serve.examples import example_requests
    from code24ctl.serve.limits import ClientLimits, default_max_connections
    from code24ctl.serve.server import (
        ReloadOutcome,
        ServeOptions,
        default_port,
        is_loopback,
        run_serve,
        settings_from_config,
    )

    explicit = config is not None or bool(os.environ.get(CONFIG_ENV_VAR))
    if not explicit and not os.path.exists(config_path_from(None)) and not demo:
        raise UsageError(
            f"no ./{DEFAULT_CONFIG_PATH} here, and no --config or {CONFIG_ENV_VAR}",
            hint="`code24ctl serve --demo` runs the built-in Code24 config with sample workers; "
            "`code24ctl init` writes a starter config",
        )
    if demo and not explicit and not os.path.exists(config_path_from(None)):
        # The demo must run anywhere after install: fall back to the Code24 config we ship.
        from code24ctl.config import builtin_config_path

        config = builtin_config_path()
        note(f"no ./{DEFAULT_CONFIG_PATH} here: using the built-in Code24 config ({config})")
    if access_log not in ACCESS_LOG_FORMATS:
        raise UsageError(
            f"--access-log {access_log!r} is not one of {', '.join(ACCESS_LOG_FORMATS)}"
        )
    if demo_ports is not None and not demo:
        raise UsageError("--demo-ports only applies with --demo")
    base_demo_port = _demo_ports(demo_ports)
    resolved = load(config, env, default_env=COMMAND_ENV_DEFAULTS["serve"])
    settings = settings_from_config(resolved)
    limited = sorted(alias for alias, policy in settings.table.workers.items() if policy.limits)
    if limited:
        note(
            f"note: serve cannot measure CPU time or count subrequests; the limits of "
            f"{', '.join(limited)} apply on Cloudflare only (a worker answering "
            "'error code: 1102' still gets worker_over_limit)"
        )
    env_name = resolved.env_name
    config_file = str(config_path_from(config))
    base_port = default_port(resolved)
    listen_port = base_port if port is None else port
    if not is_loopback(host):
        note(
            f"warning: listening on {host}, not loopback: other machines can reach "
            "this dispatcher and the workers behind it"
        )

    def ready(info: ServeInfo) -> None:
        examples = example_requests(resolved.config, info.url)
        _banner(info, env_name=env_name, base_url=resolved.environment.base_url, examples=examples)
        if json_output:
            from code24ctl.cli.output import emit
            from code24ctl.cli.schemas import ServeDocument

            emit(ServeDocument.of(info), indent=None)

    def reload() -> ServeSettings:
        return settings_from_config(load(config_file, env_name, default_env="local"))

    # Once serving, stderr may stop being read: every later line goes through the log's
    # writer, which never blocks serve.
    log = AccessLog(access_log, sys.stderr)

    def reloaded(outcome: ReloadOutcome) -> None:
        if outcome.error is None:
            log.message(f"reloaded {config_file}: {outcome.routes} routes")
            if outcome.note:
                log.message(f"warning: {outcome.note}")
        else:
            log.message(
                f"warning: reload of {config_file} failed, still serving the previous config "
                f"({outcome.routes} routes): {outcome.error}"
            )

    limits = ClientLimits(
        max_header_bytes=max_header_bytes,
        max_url_bytes=max_url_bytes,
        header_timeout_s=header_timeout,
        idle_timeout_s=idle_timeout,
        max_connections=max_connections or default_max_connections(),
    )
    run_serve(
        settings,
        host=host,
        port=listen_port,
        demo=demo,
        access_log=log,
        on_ready=ready,
        options=ServeOptions(
            demo_ports=base_demo_port,
            limits=limits,
            admin_port=metrics_port,
            metrics=metrics_port is not None,
            reload=reload,
            watch=config_file if watch else None,
        ),
        on_reload=reloaded,
    )
    log.message("serve stopped")
    log.flush(timeout=1.0)  # a stderr nobody reads must not keep the process from exiting


def _demo_ports(value: str | None) -> int | None:
    if value is None:
        return None
    if value == "auto":
        return 0
    if value.isdigit() and 1 <= int(value) <= 65535:
        return int(value)
    raise UsageError(f"--demo-ports {value!r} is not a port number or 'auto'")


def _banner(info: ServeInfo, *, env_name: str, base_url: str | None, examples: list[str]) -> None:
    lines = [f"code24ctl serve: environment {env_name} on {info.url}"]
    for prefix, worker in info.routes:
        upstream = info.upstreams.get(worker, "(no upstream: answers worker_not_found)")
        lines.append(f"  {prefix or '/':<18} -> {worker:<22} {upstream}")
    if info.demo_workers:
        from code24ctl.serve.demo import describe_demo

        lines.append(describe_demo(info.demo_workers))
    if info.admin_url:
        lines.append(f"admin: {info.admin_url}/healthz  {info.admin_url}/metrics")
    if info.unreachable:
        lines.append(
            "warning: no answer at the upstream of "
            + ", ".join(f"{alias} ({info.upstreams[alias]})" for alias in info.unreachable)
            + ": its routes answer worker_not_found until it starts"
        )
    probe = "code24ctl probe --env " + shlex.quote(env_name)
    if base_url is None or base_url.rstrip("/") != info.url:
        probe += f" --base-url {info.url}"
    lines += ["try:", *(f"  {line}" for line in examples), f"  {probe}", "Ctrl+C to stop."]
    # soft_wrap: a wrapped curl line could not be pasted back into a shell.
    stderr().print("\n".join(lines), soft_wrap=True)
