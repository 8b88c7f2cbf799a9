"""Global options wherever they are typed, help without type names, and the error document.

``-v``/``--verbose`` and ``--no-color`` are added to every command, so they work after it as
well as before; ``-c``, ``-e`` and ``--json`` are declared by the commands that use them
(:mod:`code24ctl.cli.options`) and by the root, and meet on the run's
:class:`~code24ctl.cli.invocation.Invocation`.
"""

from __future__ import annotations

import functools
import logging
import sys
import typing
from collections.abc import Callable, Sequence
from typing import Annotated, Any, TypeVar

import typer
from typer.core import TyperCommand, TyperGroup

from code24ctl.cli import output, typer_compat
from code24ctl.cli.completion import environment_names
from code24ctl.cli.help_text import markup_help
from code24ctl.cli.invocation import Invocation, invocation
from code24ctl.config.environments import describe_default
from code24ctl.config.paths import config_path_from
from code24ctl.constants import ENVIRONMENT_ENV_VAR
from code24ctl.errors import Code24Error, Failure
from code24ctl.redact import RedactingFilter, scrub

VERBOSE_HELP = (
    "log API calls on stderr; -vv adds request and response bodies (token and secret values "
    "scrubbed) and timings"
)
NO_COLOR_HELP = "plain text output, no colours (NO_COLOR=1 does the same)"


#: Commands with their own default environment (``load(..., default_env=...)``): after
#: ``--env`` and ``CODE24_ENV``, before the config's ``default_env``.
COMMAND_ENV_DEFAULTS = {"serve": "local"}

_Function = TypeVar("_Function", bound=Callable[..., Any])


def start(argv: list[str], run: Invocation) -> None:
    """Begin the invocation ``run``."""
    # Known before parsing, so a usage error found while parsing is reported as JSON too.
    run.json = run.json or "--json" in _words(argv)


def _words(argv: Sequence[str]) -> list[str]:
    """The command line before ``--`` (after it, everything is an argument)."""
    argv = list(argv)
    return argv[: argv.index("--")] if "--" in argv else argv


class PlainHelp:
    """Help without Python type names, and ``--env``'s default as this invocation resolves it.

    Mixed into every command and group class (click's ``get_help_option``, ``format_help`` and
    ``collect_usage_pieces`` hooks).
    """

    #: Set on the root group by its ``main``: ``-c`` may follow ``--help``, which is eager.
    argv: Sequence[str] = ()

    def get_help_option(self, ctx: Any) -> Any:
        """The help option, its type name hidden."""
        option = super().get_help_option(ctx)  # type: ignore[misc]
        if option is not None:
            typer_compat.hide_type_name(option)
        return option

    def format_help(self, ctx: Any, formatter: Any) -> None:
        """Help as Typer writes it, with plain metavars and the resolved ``--env`` default."""
        env_default = _env_default_text(_words(getattr(ctx.find_root().command, "argv", ())))
        params = super().get_params(ctx)  # type: ignore[misc]
        replaced: dict[Any, str] = {}
        for param in params:
            typer_compat.hide_type_name(param)
            if param.name == "env" and env_default is not None:
                own = COMMAND_ENV_DEFAULTS.get(ctx.command.name)
                shown = f"${ENVIRONMENT_ENV_VAR}, else {own}" if own else env_default
                replaced[param] = f"environment from the config [default: {shown}]"
        typer_compat.load_rich_help()
        subcommands = list(getattr(self, "commands", {}).values())
        with markup_help([self, *params, *subcommands], replaced):
            super().format_help(ctx, formatter)  # type: ignore[misc]


class Code24Command(PlainHelp, TyperCommand):
    """A leaf command: takes ``-v`` and ``--no-color`` after it too; usage shows plain names."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not any(param.name == "verbose" for param in self.params):
            self.params.extend(_leaf_params())

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        """``[OPTIONS] ALIAS [NAME]``: required arguments bare, optional ones bracketed."""
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if param.param_type_name != "argument":
                continue
            name = param.metavar or (param.name or "").upper()
            usage = name if param.required else f"[{name}]"
            pieces.append(usage + ("..." if param.nargs != 1 else ""))
        return pieces


class Code24SubGroup(PlainHelp, TyperGroup):
    """A command group below the root (``namespace``, ``secret``, ``config``)."""


class Code24Typer(typer.Typer):
    """A Typer app whose commands are :class:`Code24Command` unless told otherwise."""

    def command(
        self, name: str | None = None, *, cls: type[TyperCommand] | None = None, **kwargs: Any
    ) -> Callable[[_Function], _Function]:
        """Register a command (``cls`` defaults to :class:`Code24Command`)."""
        register = super().command(name, cls=cls or Code24Command, **kwargs)

        def decorator(function: _Function) -> _Function:
            # Typer evaluates each command's string annotations (PEP 563) several times every
            # time it builds the command tree, about 40% of that build; evaluated once here they
            # are objects already, which saves ~6 ms of every start (benchmarks/README.md).
            function.__annotations__ = typing.get_type_hints(function, include_extras=True)
            return register(function)

        return decorator


@functools.cache
def _leaf_params() -> list[Any]:
    """``-v`` and ``--no-color`` as parameters of a leaf command (built by Typer itself)."""
    helper = typer.Typer()

    @helper.command()
    def leaf(
        verbose: Annotated[
            int,
            typer.Option(
                "--verbose",
                "-v",
                count=True,
                metavar="",
                show_default=False,
                expose_value=False,
                callback=_leaf_verbose,
                help=VERBOSE_HELP,
            ),
        ] = 0,
        no_color: Annotated[
            bool,
            typer.Option(
                "--no-color",
                metavar="",
                expose_value=False,
                callback=_leaf_no_color,
                help=NO_COLOR_HELP,
            ),
        ] = False,
    ) -> None:
        """Never run: only its parameters are used."""

    built = typer.main.get_command(helper)
    return [param for param in built.params if param.name in ("verbose", "no_color")]


def _leaf_verbose(value: int) -> None:
    if value:
        set_verbosity(invocation().verbose + value)


def _leaf_no_color(value: bool) -> None:
    if value:
        invocation().no_color = True


def _env_default_text(words: list[str]) -> str | None:

    config: str | None = None
    for index, word in enumerate(words):
        if word in ("-c", "--config") and index + 1 < len(words):
            config = words[index + 1]
        elif word.startswith("--config="):
            config = word.partition("=")[2]
    return describe_default(config_path_from(config))


def complete_env(incomplete: str) -> list[str]:
    """Shell completion for ``--env``: the config's environment names."""

    return [name for name in environment_names() if name.startswith(incomplete)]


# --------------------------------------------------------------------------------------------
# logging (-v, -vv)


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is now (test runners swap it per invocation)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


class _LowerLevelFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        record.levelname = record.levelname.lower()
        return super().format(record)


def set_verbosity(verbose: int, run: Invocation | None = None) -> None:
    """Log warnings; -v: API calls (INFO); -vv: bodies and timings too (DEBUG)."""
    (run or invocation()).verbose = verbose
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
    # The SDK's DEBUG lines dump whole request options, secret values included: never shown;
    # -vv's bodies come from our own pacer, scrubbed. websockets' DEBUG lines trace the
    # handshake of a live tail (its address: the only credential the socket needs) and every
    # frame: never shown either.
    for noisy in ("httpcore", "cloudflare", "httpx", "websockets"):
        logging.getLogger(noisy).setLevel(max(level, logging.INFO))


# --------------------------------------------------------------------------------------------
# the error document (--json)


def emit_code24_error(exc: Code24Error, run: Invocation) -> None:
    """With --json and no document printed yet: one ``{"error": ...}`` document on stdout."""
    emit_failure(Failure.of(exc), run)


def emit_error(
    code: str, message: str, hint: str | None, exit_status: int, run: Invocation
) -> None:
    """The error document for a failure click found (usage) or an interruption."""
    emit_failure(
        Failure(scrub(message), scrub(hint) if hint else None, None, exit_status, code), run
    )


def emit_failure(failure: Failure, run: Invocation) -> None:
    """Print the error document when --json asked ``run`` for one and nothing else was printed."""
    if not run.json or run.emitted:
        return
    from code24ctl.cli.documents import ErrorDocument, error_body

    output.emit_json(ErrorDocument(error=error_body(failure)), run=run)


def main_with_json_errors(main: Callable[[], Any], run: Invocation) -> Any:
    """Run the parse-and-invoke with click's error handling ours, so --json sees usage errors."""
    try:
        status = main()
    except typer_compat.ClickException as exc:
        exc.show()  # type: ignore[attr-defined]
        exit_code: int = exc.exit_code  # type: ignore[attr-defined]
        message: str = exc.format_message()  # type: ignore[attr-defined]
        emit_error("usage", message, "see --help", exit_code, run)
        sys.exit(exit_code)
    except typer.Abort:
        sys.stderr.write("Aborted!\n")
        emit_error("aborted", "aborted", None, 1, run)
        sys.exit(1)
    sys.exit(status if isinstance(status, int) else 0)
