"""The one error tree of code24ctl.

Core modules raise these; only the CLI's root group (``code24ctl.cli.Code24Group``) turns them
into a message on stderr and an exit status. Every error carries its exit status (0 ok, 1 a
check found problems, 2 usage or config, 3 API or network, as ``code24ctl --help`` says), so
the CLI never has to guess. A failure kept as data (one row of a partial result) is a
:class:`Failure`, built from its error.
"""

from __future__ import annotations

import signal
from collections.abc import Sequence
from dataclasses import dataclass

from code24ctl.redact import scrub

EXIT_CHECK_FAILED = 1
EXIT_USAGE = 2
EXIT_API = 3
EXIT_INTERRUPTED = 130


@dataclass(frozen=True)
class Change:
    """One change a command had already made when it failed or was interrupted (a route
    created, a Worker uploaded, a version deployed): what the error report lists under
    ``changes already made``, in text and in the ``--json`` error document."""

    kind: str  # "route", "worker", "dispatcher", "KV namespace", "dispatch namespace", ...
    name: str
    action: str  # "created", "updated", "deleted", "deployed", ...
    detail: str | None = None

    def describe(self) -> str:
        """``route x.dev/*: created (x.dev)``."""
        said = f"{self.kind} {self.name}: {self.action}"
        return f"{said} ({self.detail})" if self.detail else said


class Code24Error(Exception):
    """Base of every error code24ctl reports to the user.

    ``changes``: what the command had already changed when this error ended it (set by the
    ops' change log, :class:`code24ctl.ops.changes.ChangeLog`).
    """

    exit_code: int = EXIT_USAGE
    changes: tuple[Change, ...] = ()

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        # Scrubbed at the source: messages also travel in --json rows and check details, not
        # only through the CLI's error report.
        message = scrub(message)
        super().__init__(message)
        self.message = message
        self.hint = scrub(hint) if hint is not None else None

    def render(self) -> str:
        """The text shown on stderr: the message, then what to do about it."""
        return self.message if not self.hint else f"{self.message}\n  hint: {self.hint}"


class UsageError(Code24Error):
    """Bad flags, a missing variable, an unknown environment: the user can fix the invocation."""

    exit_code = EXIT_USAGE


@dataclass(frozen=True)
class ConfigProblem:
    """One problem in namespaces.yaml, located so the user can jump to it."""

    field: str
    message: str
    line: int | None = None

    def render(self, path: str) -> str:
        where = f"{path}:{self.line}" if self.line is not None else path
        located = f"{where}: {self.field}" if self.field else where
        return f"{located}: {self.message}"


class ConfigError(Code24Error):
    """namespaces.yaml is unreadable or invalid; carries the file and every located problem."""

    exit_code = EXIT_USAGE

    def __init__(self, path: str, problems: list[ConfigProblem]) -> None:
        self.path = path
        self.problems = problems
        lines = "\n".join(f"  {p.render(path)}" for p in problems)
        super().__init__(f"invalid config {path}:\n{lines}")

    @property
    def line(self) -> int | None:
        return self.problems[0].line if self.problems else None

    @property
    def field(self) -> str:
        return self.problems[0].field if self.problems else ""


class CheckFailed(Code24Error):
    """A check (probe, doctor) ran fine and found problems."""

    exit_code = EXIT_CHECK_FAILED


class CloudflareAPIError(Code24Error):
    """The Cloudflare API refused or failed an operation; ``code`` is the API's error code.

    ``unknown_outcome``: the API may have carried the request out all the same (a 5xx); a
    write that failed so is read back before anything is decided or reported.
    """

    exit_code = EXIT_API

    def __init__(
        self,
        message: str,
        *,
        code: int | None = None,
        status: int | None = None,
        hint: str | None = None,
        unknown_outcome: bool = False,
    ) -> None:
        self.code = code
        self.status = status
        self.unknown_outcome = unknown_outcome
        super().__init__(message, hint=hint)


@dataclass(frozen=True)
class RouteConflict:
    """A configured route pattern that another Worker (``owner``) already holds."""

    pattern: str
    zone: str
    owner: str | None


class RouteConflictError(CloudflareAPIError):
    """Routes the dispatcher needs are routed to other Workers; ``--force`` takes them over.

    Carries the conflicts, so callers decide on them, not on the wording of the message.
    Exit 2, not 3: the API answered fine; the config and the account disagree, and the user
    decides (``--force``, or other routes).
    """

    exit_code = EXIT_USAGE

    def __init__(self, dispatcher: str, conflicts: Sequence[RouteConflict]) -> None:
        self.dispatcher = dispatcher
        self.conflicts = tuple(conflicts)
        named = ", ".join(f"{c.pattern} (routed to {c.owner or 'no Worker'})" for c in conflicts)
        zone = conflicts[0].zone if conflicts else "?"
        super().__init__(
            f"route conflict on zone {zone}: {named}; the dispatcher {dispatcher} was not deployed",
            hint="rerun with --force to take these routes over for the dispatcher, "
            "or remove them from the environment's routes",
        )


class NetworkError(Code24Error):
    """The network failed before any answer (refused, reset, DNS, timeout).

    ``unknown_outcome``: the request was sent and its answer was lost (a reset, a cut body, no
    answer in time), so the API may have carried it out; False when it never left (refused).
    """

    exit_code = EXIT_API

    def __init__(
        self, message: str, *, hint: str | None = None, unknown_outcome: bool = False
    ) -> None:
        self.unknown_outcome = unknown_outcome
        super().__init__(message, hint=hint)


def outcome_unknown(exc: BaseException) -> bool:
    """Whether a failed write may have been carried out all the same (read it back)."""
    return bool(getattr(exc, "unknown_outcome", False))


class Aborted(Code24Error):
    """The user declined a confirmation; nothing was changed."""

    exit_code = EXIT_USAGE


class Interrupted(Code24Error):
    """Ctrl-C (or SIGTERM, SIGHUP), at a prompt or mid-run; the message says what was done.

    Exit 130 for Ctrl-C; 128 + the signal's number for the others (143, 129), as a shell
    reports a process those signals ended.
    """

    exit_code = EXIT_INTERRUPTED

    def __init__(self, message: str, *, hint: str | None = None, exit_code: int | None = None):
        super().__init__(message, hint=hint)
        if exit_code is not None:
            self.exit_code = exit_code


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised where Ctrl-C raises :class:`KeyboardInterrupt`.

    A subclass on purpose: every block that cleans up after Ctrl-C (a canary putting the
    deployment back, bind reporting what it wrote) cleans up after CI's cancellation too.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def interruption_word(exc: BaseException) -> str:
    """``interrupted`` for Ctrl-C, ``terminated by SIGTERM`` (or SIGHUP) for the others."""
    if isinstance(exc, Terminated):
        return f"terminated by {signal.Signals(exc.signum).name}"
    return "interrupted"


def interruption_status(exc: BaseException) -> int:
    """The exit status for an interruption: 130, or 128 + the signal's number."""
    return 128 + exc.signum if isinstance(exc, Terminated) else EXIT_INTERRUPTED


@dataclass(frozen=True)
class Failure:
    """A failure kept as data: one row of a partial result (a worker that failed to bind, a
    step of apply), built from the error that caused it.

    ``kind`` is the error document's ``code`` (``cloudflare_api``, ``usage``, ...),
    ``api_code`` the Cloudflare API's error code when it gave one, ``exit_status`` what the
    process exits with for it. The CLI renders it (``code24ctl.cli.output.show_failure``).
    """

    message: str
    hint: str | None = None
    api_code: int | None = None
    exit_status: int = EXIT_API
    kind: str = "error"
    changes: tuple[Change, ...] = ()

    @classmethod
    def of(cls, exc: Code24Error) -> Failure:
        """The failure ``exc`` describes (its message and hint are scrubbed already)."""
        api_code = exc.code if isinstance(exc, CloudflareAPIError) else None
        return cls(
            exc.message, exc.hint or None, api_code, exc.exit_code, error_kind(exc), exc.changes
        )

    @property
    def names_api_code(self) -> bool:
        """Whether the message already says its API code (``... Cloudflare API error 10007:``)."""
        return self.api_code is not None and f"API error {self.api_code}" in self.message

    def with_api_code(self) -> str:
        """The message, followed by ``(API error N)`` unless it says N already."""
        if self.api_code is None or self.names_api_code:
            return self.message
        return f"{self.message} (API error {self.api_code})"


# Most specific first: the first class in an error's MRO found here names its kind.
_KINDS: dict[type[Code24Error], str] = {
    ConfigError: "config",
    RouteConflictError: "conflict",
    Aborted: "aborted",
    UsageError: "usage",
    CheckFailed: "check_failed",
    NetworkError: "network",
    CloudflareAPIError: "cloudflare_api",
    Code24Error: "error",
}

#: Every ``kind`` (the error document's ``error.code``).
ERROR_KINDS = tuple(dict.fromkeys(_KINDS.values()))


def error_kind(exc: Code24Error) -> str:
    """The stable kind of an error (``usage``, ``config``, ``cloudflare_api``, ...)."""
    for cls in type(exc).__mro__:
        if cls in _KINDS:
            return _KINDS[cls]
    return "error"
