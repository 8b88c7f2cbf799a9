"""Fault switches for writes whose outcome the client cannot know: ``state.faults``.

A rule names the requests it matches (a method and a glob over the path under ``/client/v4``),
which matching request it hits (the ``nth`` from when it was added, then ``times`` in a row)
and what happens to it:

- ``applied_500``: the request is carried out, then answered with a v4 JSON 500 (code 10013);
- ``applied_cut``: carried out, then the answer is cut a third of the way into its body
  (the headers promise the full length; the connection closes);
- ``applied_hang``: carried out, never answered until the client goes away;
- ``reset``: not carried out; the connection closes with no answer at all;
- ``hang``: not carried out, never answered until the client goes away;
- ``json500``, ``html503``, ``429``, any status ``_normalize_kind`` takes: not carried out,
  answered with that failure (what :meth:`EmulatorState.fail_next` sends).

The first three are the case the client must read back before deciding anything: the API did
what was asked and the answer says otherwise, or says nothing.
"""

from __future__ import annotations

import fnmatch
import threading
from dataclasses import dataclass, field

#: Kinds carried out before the answer fails.
APPLIED_KINDS = frozenset({"applied_500", "applied_cut", "applied_hang"})
#: Kinds that fail the connection itself, not carried out.
CONNECTION_KINDS = frozenset({"reset", "hang"})


@dataclass
class FaultRule:
    """One switch: ``kind`` on the ``nth`` request matching ``method`` and ``path`` (and the
    ``times - 1`` matching requests after it)."""

    method: str
    path: str
    kind: str
    nth: int = 1
    times: int = 1
    seen: int = 0
    served: int = 0

    def matches(self, method: str, path: str) -> bool:
        """Whether a request is one this rule counts."""
        return (self.method in ("*", method.upper())) and fnmatch.fnmatchcase(path, self.path)

    @property
    def spent(self) -> bool:
        """Whether the rule has hit every request it was meant to."""
        return self.served >= self.times


@dataclass
class Faults:
    """The fault switches of one emulator state (thread-safe)."""

    rules: list[FaultRule] = field(default_factory=list)
    #: ``(kind, method, path)`` of each fault served, in order.
    served: list[tuple[str, str, str]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, method: str, path: str, kind: str, nth: int = 1, times: int = 1) -> FaultRule:
        """Serve ``kind`` to the ``nth`` request (1-based, counted from now) whose method is
        ``method`` (``"*"``: any) and whose path under /client/v4 matches the glob ``path``
        (``*`` also crosses ``/``), and to the ``times - 1`` matching requests after it."""
        from .state import _normalize_kind

        if kind not in APPLIED_KINDS | CONNECTION_KINDS:
            kind = _normalize_kind(kind)[0]  # raises ValueError on an unknown kind
        if nth < 1 or times < 1:
            raise ValueError("nth and times must be at least 1")
        rule = FaultRule(method.upper(), path, kind, nth, times)
        with self._lock:
            self.rules.append(rule)
        return rule

    def take(self, method: str, path: str) -> str | None:
        """The fault kind this request gets, if any (counting it against every matching rule)."""
        with self._lock:
            hit: FaultRule | None = None
            for rule in self.rules:
                if rule.spent or not rule.matches(method, path):
                    continue
                rule.seen += 1
                if hit is None and rule.seen >= rule.nth:
                    hit = rule
            if hit is None:
                return None
            hit.served += 1
            self.served.append((hit.kind, method.upper(), path))
            self.rules = [rule for rule in self.rules if not rule.spent]
            return hit.kind

    def clear(self) -> None:
        """Remove every rule (what was served stays readable)."""
        with self._lock:
            self.rules.clear()
