"""``code24ctl serve``: run the dispatch rules locally in front of the local upstreams."""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING, Annotated

import typer

from code24ctl.cli.options import ConfigOption, EnvOption, JsonOption
from code24ctl.cli.output import note, stderr
from code24ctl.constants import SERVE_DEFAULT_HOST

if TYPE_CHECKING:
    from code24ctl.serve.prepare import PreparedServe
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


RuntimeOption = Annotated[
    str,
    typer.Option(
        "--runtime",
        metavar="python|workerd",
        help="python: the dispatch rules in Python in front of upstream URLs (fast, no Node.js); "
        "workerd: the deployed dispatcher.js and each worker's own code (`path`) in workerd "
        "(needs Node.js 20+; installs miniflare once)",
    ),
]
FromAccountOption = Annotated[
    str | None,
    typer.Option(
        "--from-account",
        metavar="ENV",
        help="workerd runtime: an alias without `path` or upstream runs the code ENV's "
        "namespace holds for it (read-only, cached by content hash, never uploaded)",
    ),
]


def serve(
    config: ConfigOption = None,
    env: EnvOption = None,
    host: HostOption = SERVE_DEFAULT_HOST,
    port: PortOption = None,
    runtime: RuntimeOption = "python",
    from_account: FromAccountOption = None,
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
    is ready. --runtime workerd runs the deployed dispatcher.js and the workers' own code.
    """
    from code24ctl.serve.examples import example_requests
    from code24ctl.serve.limits import ClientLimits, default_max_connections
    from code24ctl.serve.prepare import ServeRequest, prepare_serve, run_prepared

    request = ServeRequest(
        config=config,
        env=env,
        host=host,
        port=port,
        demo=demo,
        demo_ports=demo_ports,
        access_log=access_log,
        metrics_port=metrics_port,
        watch=watch,
        limits=ClientLimits(
            max_header_bytes=max_header_bytes,
            max_url_bytes=max_url_bytes,
            header_timeout_s=header_timeout,
            idle_timeout_s=idle_timeout,
            max_connections=max_connections or default_max_connections(),
        ),
        runtime=runtime,
        from_account=from_account,
    )
    prepared = prepare_serve(request)
    for line in prepared.notes:
        note(line)
    if from_account is not None:
        _read_account(prepared)
    resolved = prepared.resolved

    def ready(info: ServeInfo) -> None:
        examples = example_requests(resolved.config, info.url)
        _banner(
            info,
            env_name=resolved.env_name,
            base_url=resolved.environment.base_url,
            examples=examples,
        )
        if json_output:
            from code24ctl.cli.output import emit
            from code24ctl.cli.schemas import ServeDocument

            emit(ServeDocument.of(info), indent=None)

    log = run_prepared(prepared, on_ready=ready, progress=note)
    log.message("serve stopped")
    log.flush(timeout=1.0)  # a stderr nobody reads must not keep the process from exiting


def _read_account(prepared: PreparedServe) -> None:
    """--from-account: read each alias without `path` or upstream, and the outbound Worker,
    from the account (GET calls only)."""
    from code24ctl.cli.session import cloudflare_session
    from code24ctl.serve.prepare import (
        account_aliases,
        account_environment,
        wants_account_outbound,
    )
    from code24ctl.serve.workerd.account import download_namespace_code, download_outbound

    account = account_environment(prepared)
    wanted = account_aliases(prepared)
    outbound = wants_account_outbound(prepared, account)
    if not wanted and not outbound:
        return
    session = cloudflare_session(account)
    prepared.account_code = download_namespace_code(session, account, wanted, note)
    if outbound:
        prepared.account_outbound = download_outbound(session, account, note)


def _banner(info: ServeInfo, *, env_name: str, base_url: str | None, examples: list[str]) -> None:
    runtime = "" if info.runtime == "python" else f" ({info.runtime})"
    lines = [f"code24ctl serve{runtime}: environment {env_name} on {info.url}"]
    for prefix, worker in info.routes:
        upstream = info.upstreams.get(worker, "(no upstream: answers worker_not_found)")
        lines.append(f"  {prefix or '/':<18} -> {worker:<22} {upstream}")
    if info.demo_workers:
        from code24ctl.serve.demo import describe_demo

        described = describe_demo(info.demo_workers)
        if info.runtime == "workerd":
            described = described.replace("sample workers", "sample JavaScript Workers in workerd")
        lines.append(described)
    for alias, missing in sorted(info.missing_bindings.items()):
        lines.append(
            f"warning: {alias} runs without " + "; ".join(missing) + " (to run it where "
            "those exist, give the alias an upstream URL and no `path`)"
        )
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
