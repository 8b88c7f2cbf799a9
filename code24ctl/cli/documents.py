"""The one shape of every ``--json`` document, and of the error document.

Every command prints an object naming its ``command`` (``"namespace list"``), its
``environment`` and its ``namespace`` (null where there is none), with lists under plural keys
and counts under ``summary``. A failure before any document was printed prints
``{"error": {"code", "message", "hint", "exit_status"}}`` instead (the exit status unchanged).
The per-command models live in :mod:`code24ctl.cli.schemas`.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from code24ctl.cli.output import current_command
from code24ctl.errors import ERROR_KINDS, Change, Failure

#: The keys every document starts with, in this order.
ENVELOPE = ("command", "environment", "namespace")


class Document(BaseModel):
    """The keys every ``--json`` document starts with.

    ``command`` defaults to the command being run, as typed (``"namespace list"``). A document
    that extends a report (``DeployDocument(Document, DeployReport)``) inherits the report's
    field order; :meth:`printed` puts the envelope first.
    """

    model_config = ConfigDict(extra="forbid")

    command: str = Field(default_factory=current_command)
    environment: str | None
    namespace: str | None

    def printed(self) -> dict[str, Any]:
        """The document as ``--json`` prints it: the envelope, then the fields in order."""
        body = self.model_dump(mode="json", by_alias=True)
        return {key: body.pop(key) for key in ENVELOPE} | body


class ErrorBody(BaseModel):
    """What went wrong: a stable ``code``, the message and hint stderr shows, the exit status,
    and the changes already made before it (empty when nothing was changed)."""

    model_config = ConfigDict(extra="forbid")

    code: str
    message: str
    hint: str | None
    exit_status: int
    api_code: int | None = None  # the Cloudflare API's error code, when it gave one
    #: What the command had changed before it failed: ``{kind, name, action, detail}`` each.
    changes: list[Change] = Field(default_factory=list)


class ErrorDocument(BaseModel):
    """The document a failed command prints with ``--json`` (when it printed none of its own)."""

    model_config = ConfigDict(extra="forbid")

    error: ErrorBody


#: Every ``error.code`` an error document may hold.
ERROR_CODES = (*ERROR_KINDS, "interrupted")


def error_body(failure: Failure) -> ErrorBody:
    """The error document's body for a failure (the same fields a failed row shows)."""
    return ErrorBody(
        code=failure.kind,
        message=failure.message,
        hint=failure.hint,
        exit_status=failure.exit_status,
        api_code=failure.api_code,
        changes=list(failure.changes),
    )
