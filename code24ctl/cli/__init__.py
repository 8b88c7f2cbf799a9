"""The ``code24ctl`` command line: one thin module per command over the core.

Errors are turned into a message and an exit status in exactly one place,
:meth:`Code24Group.invoke`, so every command, run from a shell or through a test runner, fails
the same way (with ``--json``, stdout also carries one ``{"error": ...}`` document).
``CODE24_DEBUG=1`` shows the traceback instead (with the token scrubbed).

Global options (``-c``, ``-e``, ``--json``, ``-v``, ``--no-color``) are accepted before or after
the command: see :mod:`code24ctl.cli.globals`.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Sequence
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from code24ctl import __version__
from code24ctl.cli import globals as global_options
from code24ctl.cli import typer_compat
from code24ctl.cli.invocation import Invocation, of_context
from code24ctl.cli.options import CONFIG_HELP, ENV_HELP, JSON_HELP
from code24ctl.cli.signals import terminating_signals
from code24ctl.constants import DEBUG_ENV_VAR
from code24ctl.errors import Code24Error, interruption_status, interruption_word
from code24ctl.names import closest
from code24ctl.redact import scrub


class Code24Group(global_options.PlainHelp, TyperGroup):
    """The root group: global options anywhere, and our error tree into stderr text, an exit
    status and (with ``--json``) one error document on stdout."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        extra["windows_expand_args"] = windows_expand_args
        argv = list(sys.argv[1:] if args is None else args)
        # This run's global options; a caller (a test) may hand one in, e.g. with a fake clock.
        run = extra.get("obj")
        if not isinstance(run, Invocation):
            run = extra["obj"] = Invocation()
        global_options.start(argv, run)
        self.argv = argv
        with terminating_signals():
            if not (standalone_mode and run.json):
                return super().main(argv, prog_name, complete_var, standalone_mode, **extra)
            # --json: a usage error found while parsing must also leave its document on stdout.
            return global_options.main_with_json_errors(
                lambda: super(Code24Group, self).main(
                    argv, prog_name, complete_var, standalone_mode=False, **extra
                ),
                run,
            )

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        """The command for ``args``, with wrangler's habits understood (``versions list``,
        ``deployments list``) and a suggestion for a typo that never proposes a write."""
        args = wrangler_habit(args)
        try:
            return super().resolve_command(ctx, args)
        except typer_compat.ClickException as exc:
            if args and args[0] not in self.commands:
                guess = closest(args[0], [c for c in self.commands if c in READ_COMMANDS])
                exc.message = f"No such command {args[0]!r}." + (  # type: ignore[attr-defined]
                    f" Did you mean {guess!r}?" if guess else ""
                )
            raise

    def invoke(self, ctx: Any) -> Any:  # ctx: the (vendored) click Context
        try:
            return super().invoke(ctx)
        except Code24Error as exc:
            _report(exc, of_context(ctx))
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt as exc:
            word, status = interruption_word(exc), interruption_status(exc)
            sys.stderr.write(f"{word}\n")
            global_options.emit_error("interrupted", word, None, status, of_context(ctx))
            raise typer.Exit(status) from None


#: Commands that only read: the only ones a suggestion for a typo may name (someone who typed
#: `deployments` wanted to look, not to deploy).
READ_COMMANDS = frozenset(
    {"workers", "plan", "probe", "serve", "doctor", "stats", "tail", "versions", "config",
     "whoami"}
)  # fmt: skip

#: wrangler's words for our read commands: ``(command, subcommand)`` -> our command line.
WRANGLER_HABITS: dict[tuple[str, ...], list[str]] = {
    ("versions", "list"): ["versions"],
    ("deployments", "list"): ["versions"],
    ("deployments", "status"): ["versions"],
    ("deployments",): ["versions"],
}


def wrangler_habit(args: list[str]) -> list[str]:
    """``args`` with a wrangler habit at its start translated into our command."""
    for words, ours in WRANGLER_HABITS.items():
        if tuple(args[: len(words)]) == words:
            return [*ours, *args[len(words) :]]
    return args


def _report(exc: Code24Error, run: Invocation) -> None:
    if os.environ.get(DEBUG_ENV_VAR) == "1":
        sys.stderr.write(scrub("".join(traceback.format_exception(exc))))
    sys.stderr.write(scrub(f"error: {exc.render()}") + "\n")
    if exc.changes:
        # What is live now, as the failure left it (a rerun starts from here).
        lines = "".join(f"  {change.describe()}\n" for change in exc.changes)
        sys.stderr.write(scrub(f"changes already made:\n{lines}"))
    sys.stderr.flush()
    global_options.emit_code24_error(exc, run)


app = global_options.Code24Typer(
    cls=Code24Group,
    name="code24ctl",
    help="Administer the Code24 platform on Cloudflare Workers for Platforms: dispatch "
    "namespaces, the JSON-always dispatcher Worker, its routes, and probes that prove every "
    "route answers JSON.\n\nGlobal options (-c, -e, --json, -v, --no-color) go before or after "
    "the command.\n\nExit status: 0 ok, 1 a check found problems (or plan --exit-code: "
    "changes pending), 2 bad usage or config (a local path that cannot be uploaded, a route "
    "another Worker holds, a refused confirmation), 3 the Cloudflare API or the network "
    "failed, 130 interrupted (143/129: SIGTERM/SIGHUP).",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    # Rich markup, not Markdown: PlainHelp joins a paragraph's lines and escapes brackets, and
    # help starts without markdown-it (benchmarks/README.md, startup).
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        sys.stdout.write(f"code24ctl {__version__}\n")
        raise typer.Exit(0)


@app.callback()
def root(
    ctx: typer.Context,
    config: Annotated[
        str | None, typer.Option("--config", "-c", metavar="PATH", help=CONFIG_HELP)
    ] = None,
    env: Annotated[
        str | None,
        typer.Option(
            "--env",
            "-e",
            metavar="NAME",
            help=ENV_HELP,
            autocompletion=global_options.complete_env,
        ),
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", metavar="", help=JSON_HELP)] = False,
    verbose: Annotated[
        int,
        typer.Option(
            "--verbose",
            "-v",
            count=True,
            metavar="",
            show_default=False,
            help=global_options.VERBOSE_HELP,
        ),
    ] = 0,
    no_color: Annotated[
        bool, typer.Option("--no-color", metavar="", help=global_options.NO_COLOR_HELP)
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, metavar="", help="print the version"
        ),
    ] = False,
) -> None:
    """Options that apply to every command."""
    run = of_context(ctx)
    if config is not None:
        run.config = config
    if env is not None:
        run.env = env
    run.json = run.json or json_output
    run.no_color = run.no_color or no_color
    global_options.set_verbosity(max(verbose, run.verbose), run)


def _register() -> None:
    # Command modules import only typer and our core; each defers heavy imports to its body.
    from code24ctl.cli import (
        apply,
        bind,
        config_cmd,
        deploy,
        doctor,
        init,
        logs,
        namespace,
        plan,
        probe,
        promote,
        rollback,
        secret,
        serve,
        stats,
        tail,
        unbind,
        versions,
        whoami,
        workers,
    )

    app.add_typer(namespace.app, name="namespace")
    app.command("bind")(bind.bind)
    app.command("unbind")(unbind.unbind)
    app.command("workers")(workers.workers)
    app.add_typer(secret.app, name="secret")
    app.command("deploy")(deploy.deploy)
    app.command("plan")(plan.plan)
    app.command("apply")(apply.apply)
    app.command("probe")(probe.probe)
    app.command("serve")(serve.serve)
    app.command("doctor")(doctor.doctor)
    app.command("stats")(stats.stats)
    app.command("tail")(tail.tail)
    app.command("logs")(logs.logs)
    app.command("versions")(versions.versions)
    app.command("whoami")(whoami.whoami)
    app.command("promote")(promote.promote)
    app.command("rollback")(rollback.rollback)
    app.add_typer(config_cmd.app, name="config")
    app.command("init")(init.init)


_register()


def main() -> None:
    """Console-script entry point."""
    app(prog_name="code24ctl")
