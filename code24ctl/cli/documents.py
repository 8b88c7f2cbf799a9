"""The one shape of every ``--json`` document, and of the error document.

Every command prints an object naming its ``command`` (``"namespace list"``), its
``environment`` and its ``namespace`` (null where there is none), with lists under plural keys
and counts under ``summary``. A failure before any document was printed prints
``{"error": {"code", "message", "hint", "exit_status"}}`` instead (the exit status unchanged).
The per-command models live in :mod:`code24ctl.cli.schemas`.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer

from code24ctl.errors import (
    Aborted,
    CheckFailed,
    CloudflareAPIError,
    Code24Error,
    ConfigError,
    NetworkError,
    UsageError,
)


def _command_being_run() -> str:
    from code24ctl.cli.output import current_command

    return current_command()


#: The keys every document starts with, in this order.
ENVELOPE = ("command", "environment", "namespace")


class Document(BaseModel):
    """The keys every ``--json`` document starts with.

    ``command`` defaults to the command being run, as typed (``"namespace list"``). A document
    that extends a report (``DeployDocument(Document, DeployReport)``) inherits the report's
    field order; the envelope still comes first when it is printed.
    """

    model_config = ConfigDict(extra="forbid")

    command: str = Field(default_factory=_command_being_run)
    environment: str | None
    namespace: str | None

    @model_serializer(mode="wrap")
    def _envelope_first(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        body: dict[str, Any] = handler(self)
        return {key: body.pop(key) for key in ENVELOPE if key in body} | body


class ErrorBody(BaseModel):
    """What went wrong: a stable ``code``, the message and hint stderr shows, the exit status."""

    model_config = ConfigDict(extra="forbid")

    code: str
    message: str
    hint: str | None
    exit_status: int
    api_code: int | None = None  # the Cloudflare API's error code, when it gave one


class ErrorDocument(BaseModel):
    """The document a failed command prints with ``--json`` (when it printed none of its own)."""

    model_config = ConfigDict(extra="forbid")

    error: ErrorBody


# Most specific first: the first class in an error's MRO found here names its code.
_CODES: dict[type[Code24Error], str] = {
    ConfigError: "config",
    Aborted: "aborted",
    UsageError: "usage",
    CheckFailed: "check_failed",
    NetworkError: "network",
    CloudflareAPIError: "cloudflare_api",
    Code24Error: "error",
}

ERROR_CODES = (*_CODES.values(), "interrupted")


def error_code(exc: Code24Error) -> str:
    """The stable ``error.code`` for an error (``usage``, ``config``, ``cloudflare_api``, ...)."""
    for cls in type(exc).__mro__:
        if cls in _CODES:
            return _CODES[cls]
    return "error"
