"""Options every command shares, declared once so their names and help never drift.

``-c/--config``, ``-e/--env`` and ``--json`` are global: given before the command they land on
the run's :class:`~code24ctl.cli.invocation.Invocation`, and each command's own option (these
annotations) falls back to that value, so ``code24ctl --json -e production workers`` and
``code24ctl workers --json -e production`` are the same call. A command that declares
``config: ConfigOption = None`` etc. gets this for free. ``CODE24_CONFIG`` and ``CODE24_ENV``
are read by :func:`load`, after the flags, so a flag in either position always wins over the
variable.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from code24ctl.cli.completion import environment_names
from code24ctl.cli.invocation import invocation, land_config, land_env, land_json
from code24ctl.config.environments import resolve_environment
from code24ctl.constants import CONFIG_ENV_VAR, ENVIRONMENT_ENV_VAR, MAX_WORKER_CONCURRENCY

if TYPE_CHECKING:
    from code24ctl.config import ResolvedConfig


CONFIG_HELP = f"namespaces.yaml to read [default: ${CONFIG_ENV_VAR}, else ./namespaces.yaml]"
ENV_HELP = (
    f"environment from the config [default: ${ENVIRONMENT_ENV_VAR}, else the config's "
    "default_env, else its only non-local environment]"
)
JSON_HELP = "print exactly one JSON document on stdout, nothing else"

ConfigOption = Annotated[
    str | None,
    typer.Option("--config", "-c", metavar="PATH", callback=land_config, help=CONFIG_HELP),
]
EnvOption = Annotated[
    str | None,
    typer.Option(
        "--env",
        "-e",
        metavar="NAME",
        callback=land_env,
        help=ENV_HELP,
        autocompletion=lambda incomplete: _complete_env(incomplete),
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", metavar="", callback=land_json, help=JSON_HELP)]
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


def load(config: str | None, env: str | None, default_env: str | None = None) -> ResolvedConfig:
    """Resolve the config file and environment the user asked for.

    ``env`` is what ``--env`` said (either position); then ``CODE24_ENV``; then ``default_env``
    (a command's own default, e.g. serve's ``local``); then the config's ``default_env``; then
    its only non-local environment. Every environment error names where the value came from.
    """
    from code24ctl.config import config_path_from

    run = invocation()
    return resolve_environment(
        config_path_from(config if config is not None else run.config),
        env if env is not None else run.env,
        command_default=default_env,
    )


def _complete_env(incomplete: str) -> list[str]:

    return [name for name in environment_names() if name.startswith(incomplete)]


UnprobedOption = Annotated[
    bool,
    typer.Option(
        "--unprobed",
        metavar="",
        help="upload a changed dispatcher with a script PUT, live at 100% at once WITHOUT a "
        "probe (for a Versions API that refuses the upload, workers-sdk#10712); by default "
        "it is probed through the version override at 0% first",
    ),
]
