"""Rows of a partial result that may hold a :class:`~code24ctl.errors.Failure`.

A failed row keeps the failure itself (message, hint, API code, exit status, kind), built from
the error once; its ``--json`` form keeps the keys the documents have always had (``error``,
``code``, ``hint`` in a row; ``error`` and ``next`` in apply's result), where they always were.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import (
    BaseModel,
    Field,
    SerializerFunctionWrapHandler,
    model_serializer,
    model_validator,
)

from code24ctl.errors import Failure


class HoldsFailure(BaseModel):
    """A model with an optional ``failure``, printed as three keys after ``failure_after``."""

    failure: Failure | None = Field(default=None, exclude=True)

    #: The keys the failure's message, API code and hint are printed under (None: left out).
    failure_keys: ClassVar[tuple[str, str | None, str]] = ("error", "code", "hint")
    #: The field the failure's keys follow.
    failure_after: ClassVar[str]

    @model_validator(mode="before")
    @classmethod
    def _failure_from_keys(cls, data: Any) -> Any:
        """Read a printed document back (a saved plan, the contract tests) into ``failure``."""
        message_key, code_key, hint_key = cls.failure_keys
        if not isinstance(data, dict) or message_key not in data:
            return data
        data = dict(data)
        message = data.pop(message_key)
        code = data.pop(code_key, None) if code_key is not None else None
        hint = data.pop(hint_key, None)
        if message is not None and data.get("failure") is None:
            data["failure"] = Failure(message, hint, code)
        return data

    @model_serializer(mode="wrap")
    def _failure_as_keys(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        body: dict[str, Any] = handler(self)
        failure = self.failure
        message_key, code_key, hint_key = self.failure_keys
        keys: dict[str, Any] = {message_key: failure.message if failure else None}
        if code_key is not None:
            keys[code_key] = failure.api_code if failure else None
        keys[hint_key] = failure.hint if failure else None
        printed: dict[str, Any] = {}
        for key, value in body.items():
            printed[key] = value
            if key == self.failure_after:
                printed.update(keys)
        return printed
