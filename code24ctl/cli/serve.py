"""``code24ctl serve``: run the dispatch rules locally in front of the local upstreams."""

from __future__ import annotations

import os
import shlex
import sys
from typing import TYPE_CHECKING, Annotated

import typer

from code24ctl.cli.options import ConfigOption, EnvOption, JsonOption, load
from code24ctl.cli.output import note, stderr
from code24ctl.constants import CONFIG_ENV_VAR, DEFAULT_CONFIG_PATH
from code24ctl.errors import UsageError

if TYPE_CHECKING:
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


def serve(
    config: ConfigOption = None,
    env: EnvOption = None,
    host: HostOption = "127.0.0.1",
    port: PortOption = None,
    demo: DemoOption = False,
    access_log: AccessLogOption = "text",
    json_output: JsonOption = False,
) -> None:
    """Run the dispatch logic locally (--demo: with built-in sample workers).

    The environment defaults to local (serve only runs environments with upstreams). Listens
    until Ctrl+C or SIGTERM, then finishes in-flight requests and exits 0. With --json, one
    JSON document describing what runs is printed on stdout once it is ready.
    """
    from code24ctl.serve.access_log import ACCESS_LOG_FORMATS, AccessLog
    from code24ctl.serve.server import (
        default_port,
        is_loopback,
        run_serve,
        settings_from_config,
    )

    explicit = config is not None or bool(os.environ.get(CONFIG_ENV_VAR))
    if not explicit and not os.path.exists(DEFAULT_CONFIG_PATH) and not demo:
        raise UsageError(
            f"no ./{DEFAULT_CONFIG_PATH} here, and no --config or {CONFIG_ENV_VAR}",
            hint="`code24ctl serve --demo` runs the built-in Code24 config with sample workers; "
            "`code24ctl init` writes a starter config",
        )
    if demo and not explicit and not os.path.exists(DEFAULT_CONFIG_PATH):
        # The demo must run anywhere after install: fall back to the Code24 config we ship.
        from code24ctl.config import builtin_config_path

        config = builtin_config_path()
        note(f"no ./{DEFAULT_CONFIG_PATH} here: using the built-in Code24 config ({config})")
    if access_log not in ACCESS_LOG_FORMATS:
        raise UsageError(
            f"--access-log {access_log!r} is not one of {', '.join(ACCESS_LOG_FORMATS)}"
        )
    resolved = load(config, env, default_env="local")
    settings = settings_from_config(resolved)
    limited = sorted(alias for alias, policy in settings.table.workers.items() if policy.limits)
    if limited:
        note(
            f"note: serve cannot measure CPU time or count subrequests; the limits of "
            f"{', '.join(limited)} apply on Cloudflare only (a worker answering "
            "'error code: 1102' still gets worker_over_limit)"
        )
    base_port = default_port(resolved)
    listen_port = base_port if port is None else port
    if not is_loopback(host):
        note(
            f"warning: listening on {host}, not loopback: other machines can reach "
            "this dispatcher and the workers behind it"
        )

    def ready(info: ServeInfo) -> None:
        _banner(info, env_name=resolved.env_name, base_url=resolved.environment.base_url)
        if json_output:
            from code24ctl.cli.output import emit_document

            emit_document(
                info.as_dict(), environment=resolved.env_name, namespace=None, indent=None
            )

    run_serve(
        settings,
        host=host,
        port=listen_port,
        demo=demo,
        access_log=AccessLog(access_log, sys.stderr),
        on_ready=ready,
    )
    note("serve stopped")


def _banner(info: ServeInfo, *, env_name: str, base_url: str | None) -> None:
    lines = [f"code24ctl serve: environment {env_name} on {info.url}"]
    for prefix, worker in info.routes:
        upstream = info.upstreams.get(worker, "(no upstream: answers worker_not_found)")
        lines.append(f"  {prefix or '/':<18} -> {worker:<22} {upstream}")
    if info.demo_workers:
        lines.append(
            "demo: built-in sample workers answer every alias; designer-worker answers an HTML "
            "'502 Bad Gateway' page, which the dispatcher turns into its JSON fallback."
        )
    probe = "code24ctl probe --env " + shlex.quote(env_name)
    if base_url is None or base_url.rstrip("/") != info.url:
        probe += f" --base-url {info.url}"
    lines += [
        "try:",
        f"  curl -s -X POST {info.url}/api/competitive/analyze-industry "
        "-H 'content-type: application/json' -d '{\"industry\": \"saas\"}'",
        f"  curl -si -X POST {info.url}/elite/design/enhanced -d '{{}}'",
        f"  {probe}",
        "Ctrl+C to stop.",
    ]
    # soft_wrap: a wrapped curl line could not be pasted back into a shell.
    stderr().print("\n".join(lines), soft_wrap=True)
