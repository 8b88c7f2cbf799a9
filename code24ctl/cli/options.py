"""Options every command shares, declared once so their names and help never drift."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from code24ctl.constants import CONFIG_ENV_VAR, ENVIRONMENT_ENV_VAR, MAX_WORKER_CONCURRENCY

if TYPE_CHECKING:
    from code24ctl.config import ResolvedConfig

ConfigOption = Annotated[
    str | None,
    typer.Option(
        "--config",
        "-c",
        envvar=CONFIG_ENV_VAR,
        show_envvar=True,
        metavar="PATH",
        help="namespaces.yaml to read [default: ./namespaces.yaml]",
    ),
]
EnvOption = Annotated[
    str | None,
    typer.Option(
        "--env",
        "-e",
        envvar=ENVIRONMENT_ENV_VAR,
        show_envvar=True,
        metavar="NAME",
        help="environment from the config (staging, production, local, ...)",
    ),
]
JsonOption = Annotated[
    bool,
    typer.Option(
        "--json", metavar="", help="print exactly one JSON document on stdout, nothing else"
    ),
]
YesOption = Annotated[
    bool, typer.Option("--yes", "-y", metavar="", help="do not ask for confirmation")
]
DryRunOption = Annotated[
    bool, typer.Option("--dry-run", metavar="", help="show what would change; write nothing")
]

ForceOption = Annotated[
    bool,
    typer.Option(
        "--force", metavar="", help="take over route patterns that are routed to another Worker"
    ),
]
ConcurrencyOption = Annotated[
    int,
    typer.Option(
        "--concurrency",
        min=1,
        max=MAX_WORKER_CONCURRENCY,
        metavar="N",
        help="workers handled at the same time",
    ),
]


def load(config: str | None, env: str | None, default_env: str = "staging") -> ResolvedConfig:
    """Resolve the config file and environment the user asked for."""
    from code24ctl.config import config_path_from, resolve_config

    return resolve_config(config_path_from(config), env or default_env)
