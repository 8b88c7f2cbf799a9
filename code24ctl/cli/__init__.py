"""The ``code24ctl`` command line: one thin module per command over the core.

Errors are turned into a message and an exit status in exactly one place,
:meth:`Code24Group.invoke`, so every command, run from a shell or through a test runner, fails
the same way. ``CODE24_DEBUG=1`` shows the traceback instead (with the token scrubbed).
"""

from __future__ import annotations

import logging
import os
import sys
import traceback
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from code24ctl import __version__
from code24ctl.constants import DEBUG_ENV_VAR
from code24ctl.errors import Code24Error
from code24ctl.redact import RedactingFilter, scrub


class Code24Group(TyperGroup):
    """The root group: turns our error tree into stderr text and an exit status."""

    def invoke(self, ctx: Any) -> Any:  # ctx: the (vendored) click Context
        try:
            return super().invoke(ctx)
        except Code24Error as exc:
            _report(exc)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            sys.stderr.write("interrupted\n")
            raise typer.Exit(130) from None


def _report(exc: Code24Error) -> None:
    if os.environ.get(DEBUG_ENV_VAR) == "1":
        sys.stderr.write(scrub("".join(traceback.format_exception(exc))))
    sys.stderr.write(scrub(f"error: {exc.render()}") + "\n")
    sys.stderr.flush()


app = typer.Typer(
    cls=Code24Group,
    name="code24ctl",
    help="Administer the Code24 platform on Cloudflare Workers for Platforms: dispatch "
    "namespaces, the JSON-always dispatcher Worker, its routes, and probes that prove every "
    "route answers JSON.\n\nExit status: 0 ok, 1 a check found problems (or `plan --exit-code`: "
    "changes pending), 2 bad usage or config (or a refused confirmation), 3 the Cloudflare API "
    "or the network failed, 130 interrupted.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Markdown joins a docstring paragraph's lines, so help rewraps to the terminal width.
    rich_markup_mode="markdown",
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        sys.stdout.write(f"code24ctl {__version__}\n")
        raise typer.Exit(0)


@app.callback()
def root(
    verbose: Annotated[
        int,
        typer.Option(
            "--verbose",
            "-v",
            count=True,
            metavar="",
            help="log API calls on stderr (-vv: more); put it before the command",
        ),
    ] = 0,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, metavar="", help="print the version"
        ),
    ] = False,
) -> None:
    """Options that apply to every command."""
    _configure_logging(verbose)


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is now (test runners swap it per invocation)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


class _LowerLevelFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        record.levelname = record.levelname.lower()
        return super().format(record)


def _configure_logging(verbose: int) -> None:
    handler = _StderrHandler()
    handler.addFilter(RedactingFilter())
    # Plain "warning: ..." for people; -v adds the logger name for whoever debugs.
    detail = "%(name)s: " if verbose else ""
    handler.setFormatter(_LowerLevelFormatter(f"%(levelname)s: {detail}%(message)s"))
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    root_logger = logging.getLogger()
    root_logger.handlers[:] = [handler]
    root_logger.setLevel(level)
    # httpcore's connection-level trace is noise even at -vv; API calls show via httpx (INFO).
    # The SDK's DEBUG lines dump whole request options, secret values included: never shown.
    for noisy in ("httpcore", "cloudflare"):
        logging.getLogger(noisy).setLevel(max(level, logging.INFO))


def _register() -> None:
    # Command modules import only typer and our core; each defers heavy imports to its body.
    from code24ctl.cli import (
        apply,
        bind,
        config_cmd,
        deploy,
        doctor,
        namespace,
        probe,
        release,
        secret,
        serve,
        stats,
        tail,
        unbind,
        versions,
        workers,
    )

    app.add_typer(namespace.app, name="namespace")
    app.command("bind")(bind.bind)
    app.command("unbind")(unbind.unbind)
    app.command("workers")(workers.workers)
    app.add_typer(secret.app, name="secret")
    app.command("deploy")(deploy.deploy)
    app.command("plan")(apply.plan)
    app.command("apply")(apply.apply)
    app.command("probe")(probe.probe)
    app.command("serve")(serve.serve)
    app.command("doctor")(doctor.doctor)
    app.command("stats")(stats.stats)
    app.command("tail")(tail.tail)
    app.command("versions")(versions.versions)
    app.command("promote")(release.promote)
    app.command("rollback")(release.rollback)
    app.add_typer(config_cmd.app, name="config")


_register()


def main() -> None:
    """Console-script entry point."""
    app(prog_name="code24ctl")
