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
from collections.abc import Callable, Iterator
from typing import Annotated, Any

import typer

from code24ctl.cli import output
from code24ctl.cli.invocation import Invocation, invocation
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


def start(root: Any, argv: list[str], run: Invocation) -> None:
    """Begin the invocation ``run``: prepare the command tree for it."""
    words = argv[: argv.index("--")] if "--" in argv else argv
    # Known before parsing, so a usage error found while parsing is reported as JSON too.
    run.json = run.json or "--json" in words
    wants_help = any(word in ("-h", "--help") for word in words)
    env_default = _env_default_text(words) if wants_help else None
    for command in _walk(root):
        _prepare(command, env_default)


def _walk(command: Any) -> Iterator[Any]:
    yield command
    for child in (getattr(command, "commands", None) or {}).values():
        yield from _walk(child)


def _prepare(command: Any, env_default: str | None) -> None:
    is_group = hasattr(command, "commands")
    names = {param.name for param in command.params}
    if not is_group and "verbose" not in names:
        command.params.extend(_leaf_params())
    for param in command.params:
        _plain_help(param)
        if env_default is not None and param.name == "env":
            own = COMMAND_ENV_DEFAULTS.get(command.name)
            shown = f"${ENVIRONMENT_ENV_VAR}, else {own}" if own else env_default
            param.help = f"environment from the config [default: {shown}]"
    make_help_option = command.get_help_option

    def help_option(ctx: Any) -> Any:
        option = make_help_option(ctx)
        if option is not None:
            _plain_help(option)
        return option

    setattr(command, "get_help_option", help_option)  # noqa: B010


def _plain_help(param: Any) -> None:
    # Help shows metavars people read (PATH, NAME, N), never Python type names like <bool>;
    # required arguments are shown as NAME, not {NAME}.
    if isinstance(param, typer.core.TyperArgument):
        name = param.display_name_raw
        usage = name if param.required else f"[{name}]"
        usage += "..." if param.nargs != 1 else ""
        setattr(param, "display_type_rich", lambda ctx: None)  # noqa: B010
        setattr(param, "_usage_display_name", lambda: usage)  # noqa: B010
    elif getattr(param, "metavar", None) is None and hasattr(param, "display_type_rich"):
        setattr(param, "display_type_rich", lambda ctx: None)  # noqa: B010


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
    from code24ctl.config.environments import describe_default
    from code24ctl.config.paths import config_path_from

    config: str | None = None
    for index, word in enumerate(words):
        if word in ("-c", "--config") and index + 1 < len(words):
            config = words[index + 1]
        elif word.startswith("--config="):
            config = word.partition("=")[2]
    return describe_default(config_path_from(config))


def complete_env(incomplete: str) -> list[str]:
    """Shell completion for ``--env``: the config's environment names."""
    from code24ctl.cli.completion import environment_names

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
    # -vv's bodies come from our own pacer, scrubbed.
    for noisy in ("httpcore", "cloudflare", "httpx"):
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
    from typer import _click

    try:
        status = main()
    except _click.exceptions.ClickException as exc:
        exc.show()
        emit_error("usage", exc.format_message(), "see --help", exc.exit_code, run)
        sys.exit(exc.exit_code)
    except typer.Abort:
        sys.stderr.write("Aborted!\n")
        emit_error("aborted", "aborted", None, 1, run)
        sys.exit(1)
    sys.exit(status if isinstance(status, int) else 0)
