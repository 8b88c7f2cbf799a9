"""Loader for the dispatch conformance corpus (``tests/contract/conformance/cases.yaml``).

The corpus is data only: each case is one request to a dispatcher and the answer expected back.
Both implementations run it: the JavaScript dispatcher inside workerd
(``tests/contract/test_dispatcher_js.py``) and the Python ``serve``. Everything a harness needs
to build its setup comes from here, so both send byte-identical requests:

- ``case.table_for()``: the route table for the case (defaults merged, validated).
- ``case.environment``: the ``ENVIRONMENT`` value.
- ``case.workers``: alias -> behaviour; an alias the table routes to but absent here is not in
  the namespace (no upstream).
- ``case.http_request()``: method, target, header list, body bytes, chunked or not.
- ``case.runs_on(implementation)``: ``False`` for cases marked ``only: [...]`` without it.

The rules are those of ``docs/dispatch.md``: a case's ``rule`` is one of its section numbers
(``D1``...), read from the document itself. Optional keys:
``only`` and ``note`` on a case; ``chunked`` on a request (send the body with no Content-Length);
a header value ``null`` (do not send that header; used to drop the default ``X-Request-Id``);
``json_absent`` and ``body_length`` in ``expect``; ``stream`` is NOT part of the corpus
(``big_json`` bodies in the corpus always declare their length).

Recording (JS only, ``only: [js]``): ``analytics: record | throw`` on a case gives the dispatcher an
``ANALYTICS`` dataset stand-in (``tests/js/shim.mjs``) that keeps each data point or throws;
``data_points`` in ``expect`` lists the points written (a ``null`` double means "any number
>= 0", for timings), ``logs_match`` lists patterns that some workerd log line about the request
must match.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

from code24ctl.dispatch.routing import DEFAULT_FALLBACK_STATUS, DEFAULT_TIMEOUT_MS

CASES_PATH = Path(__file__).with_name("cases.yaml")

Implementation = Literal["python", "js"]

DOC_PATH = Path(__file__).resolve().parents[3] / "docs" / "dispatch.md"
_RULE_HEADING = re.compile(r"^## (D[0-9]+) ", re.MULTILINE)


def documented_rules(text: str | None = None) -> tuple[str, ...]:
    """The rule numbers ``docs/dispatch.md`` has a section for (``## D1 Route`` ...), in order."""
    return tuple(_RULE_HEADING.findall(DOC_PATH.read_text("utf-8") if text is None else text))


RULES = documented_rules()
# Rules about probe, not the dispatcher: no corpus case can check them.
PROBE_RULES = ("D8",)
CASE_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
# The dispatcher keeps a client X-Request-Id only when it matches this (docs/dispatch.md, D3).
SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


# --- The route table (what the dispatcher's ROUTE_TABLE binding holds) -----------------------


class Route(_Strict):
    """One route: requests under ``prefix`` go to ``worker`` with ``strip`` removed."""

    prefix: str
    worker: str
    strip: str


class Limits(_Strict):
    """Custom limits passed to DISPATCHER.get()."""

    cpu_ms: int | None = Field(default=None, gt=0)
    subrequests: int | None = Field(default=None, gt=0)


class WorkerSettings(_Strict):
    """Per-alias dispatch settings, with the route table's defaults (docs/dispatch.md)."""

    timeout_ms: int = Field(default=DEFAULT_TIMEOUT_MS, gt=0)
    fallback: Any = None
    fallback_status: int = Field(default=DEFAULT_FALLBACK_STATUS, ge=200, le=599)
    limits: Limits | None = None


class RouteTable(_Strict):
    """The route table format of docs/dispatch.md ("The route table")."""

    version: Literal[1]
    max_body_bytes: int = Field(ge=0)
    max_json_check_bytes: int = Field(ge=0)
    routes: list[Route]
    workers: dict[str, WorkerSettings]
    outbound_params: list[Literal["worker", "environment", "request_id", "route"]] | None = None


# --- Worker behaviours ----------------------------------------------------------------------


class Echo(_Strict):
    """200 JSON describing the request the worker received."""

    behaviour: Literal["echo"]


class JsonAnswer(_Strict):
    """A JSON answer with a chosen status, content type and extra headers."""

    behaviour: Literal["json"]
    status: int = 200
    json_value: Any = Field(alias="json")
    content_type: str = "application/json"
    headers: dict[str, str] = Field(default_factory=dict)


class RawAnswer(_Strict):
    """A text answer; ``content_type`` None means no Content-Type header at all."""

    behaviour: Literal["raw"]
    status: int = 200
    content_type: str | None = None
    body: str = ""


class BigJson(_Strict):
    """A valid JSON document of exactly ``bytes`` bytes: ``{"pad":"aaa..."}``."""

    behaviour: Literal["big_json"]
    bytes: int = Field(ge=len('{"pad":""}'))


class Slow(_Strict):
    """Wait ``delay_ms``, then behave like ``then``."""

    behaviour: Literal["slow"]
    delay_ms: int = Field(ge=0)
    then: Behaviour


class Throw(_Strict):
    """Fail without answering (JS: throw; Python: reset the connection)."""

    behaviour: Literal["throw"]


class OverLimit(_Strict):
    """Exceed the worker's custom limit. JS: the namespace shim's fetch() throws ``message``
    (default: error 1102's wordings); Python: the worker answers as Cloudflare does over HTTP
    (503, ``error code: 1102``), where no message travels."""

    behaviour: Literal["over_limit"]
    message: str | None = None


Behaviour = Annotated[
    Echo | JsonAnswer | RawAnswer | BigJson | Slow | Throw | OverLimit,
    Field(discriminator="behaviour"),
]
Slow.model_rebuild()


def behaviour_config(behaviour: Behaviour) -> dict[str, Any]:
    """The behaviour as a JSON-ready dict, keys named as in the YAML (``json``)."""
    return behaviour.model_dump(mode="json", by_alias=True)


# --- Requests and expectations --------------------------------------------------------------


class HttpRequest(_Strict):
    """A request exactly as a harness must put it on the wire."""

    method: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes
    chunked: bool

    def header(self, name: str) -> str | None:
        """The value of header ``name`` (case-insensitive), or None."""
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None


class Request(_Strict):
    """The request of a case. At most one of ``body``, ``json``, ``body_bytes``."""

    method: str = "GET"
    target: str
    # A None value means "do not send this header" (it drops the default X-Request-Id).
    headers: dict[str, str | None] = Field(default_factory=dict)
    body: str | None = None
    json_value: Any = Field(default=None, alias="json")
    body_bytes: int | None = Field(default=None, ge=0)
    chunked: bool = False

    @model_validator(mode="after")
    def _one_body(self) -> Request:
        given = [f for f in ("body", "json_value", "body_bytes") if f in self.model_fields_set]
        if len(given) > 1:
            raise ValueError("give at most one of body, json, body_bytes")
        return self

    def payload(self) -> bytes:
        """The body bytes: UTF-8 text, compact JSON, or ``body_bytes`` bytes of ``a``."""
        if "json_value" in self.model_fields_set:
            text = json.dumps(self.json_value, separators=(",", ":"), ensure_ascii=False)
            return text.encode()
        if self.body_bytes is not None:
            return b"a" * self.body_bytes
        return (self.body or "").encode()


class DataPoint(_Strict):
    """One Analytics Engine data point as ``writeDataPoint`` received it."""

    indexes: list[str]
    blobs: list[str]
    doubles: list[float | None]


class Expect(_Strict):
    """What the answer must look like. Header names are case-insensitive."""

    status: int
    headers: dict[str, str] = Field(default_factory=dict)
    headers_absent: list[str] = Field(default_factory=list)
    headers_match: dict[str, str] = Field(default_factory=dict)
    json_value: Any = Field(default=None, alias="json")
    json_subset: Any = None
    # Paths into the JSON body that must not exist, "/"-separated: "headers/keep-alive".
    json_absent: list[str] = Field(default_factory=list)
    body: str | None = None
    body_length: int | None = None
    data_points: list[DataPoint] | None = None
    logs_match: list[str] = Field(default_factory=list)
    # The options DISPATCHER.get() receives (limits, outbound parameter values). JS: recorded by
    # the namespace shim; Python: what routing.dispatch_options gives for the case.
    dispatch_options: dict[str, Any] | None = None

    @property
    def has_json(self) -> bool:
        """Whether an exact JSON body is expected (``json: null`` counts)."""
        return "json_value" in self.model_fields_set


class Defaults(_Strict):
    """Corpus-wide defaults."""

    environment: str
    table: dict[str, Any]


class Case(_Strict):
    """One conformance case."""

    name: str
    rule: str
    note: str | None = None
    only: list[Implementation] | None = None
    analytics: Literal["record", "throw"] | None = None
    table: dict[str, Any] | None = None
    workers: dict[str, Behaviour] = Field(default_factory=dict)
    request: Request
    expect: Expect

    _defaults: Defaults | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _check(self) -> Case:
        if not CASE_NAME.match(self.name):
            raise ValueError(f"name {self.name!r} is not snake_case")
        if self.rule not in RULES:
            raise ValueError(f"rule {self.rule!r} is not one of {', '.join(RULES)}")
        records = self.analytics is not None or self.expect.data_points is not None
        if records and self.only != ["js"]:
            raise ValueError("recording cases run on the JS dispatcher only: add only: [js]")
        return self

    @property
    def environment(self) -> str:
        """The ENVIRONMENT value for this case."""
        return self._require_defaults().environment

    def table_for(self) -> dict[str, Any]:
        """The route table for this case: the default table with this case's top-level keys
        replacing the default ones (so a case can change ``max_json_check_bytes`` alone, or give
        a whole table). Validated against the format; returned JSON-ready."""
        merged = {**self._require_defaults().table, **(self.table or {})}
        table = RouteTable.model_validate(merged).model_dump(mode="json")
        # Optional keys a case does not use stay out of the table, as compile_route_table does.
        if table["outbound_params"] is None:
            del table["outbound_params"]
        for settings in table["workers"].values():
            if settings["limits"] is None:
                del settings["limits"]
            else:
                settings["limits"] = {k: v for k, v in settings["limits"].items() if v is not None}
        return table

    def expected_dispatch_options(self, request_id: str) -> dict[str, Any] | None:
        """``expect.dispatch_options`` with ``"<x-code24-request-id>"`` replaced by the request
        id the answer carries (for cases whose id is generated)."""

        def fill(value: Any) -> Any:
            if isinstance(value, dict):
                return {k: fill(v) for k, v in value.items()}
            return request_id if value == "<x-code24-request-id>" else value

        wanted = self.expect.dispatch_options
        return None if wanted is None else fill(wanted)

    def runs_on(self, implementation: Implementation) -> bool:
        """Whether this case applies to that implementation."""
        return self.only is None or implementation in self.only

    def http_request(self) -> HttpRequest:
        """The request to send. ``X-Request-Id: <case name>`` is added unless the case sets that
        header (a null value means: send none); JSON bodies get ``Content-Type: application/json``
        unless the case sets one."""
        given = {name.lower(): name for name in self.request.headers}
        headers: list[tuple[str, str]] = []
        if "x-request-id" not in given:
            headers.append(("X-Request-Id", self.name))
        if "json_value" in self.request.model_fields_set and "content-type" not in given:
            headers.append(("Content-Type", "application/json"))
        headers.extend((k, v) for k, v in self.request.headers.items() if v is not None)
        return HttpRequest(
            method=self.request.method,
            target=self.request.target,
            headers=headers,
            body=self.request.payload(),
            chunked=self.request.chunked,
        )

    def _require_defaults(self) -> Defaults:
        if self._defaults is None:
            raise RuntimeError("Case was not made by load_cases(); it has no defaults")
        return self._defaults


class Corpus(_Strict):
    """The whole file."""

    defaults: Defaults
    cases: list[Case]


def load_cases(path: Path = CASES_PATH) -> list[Case]:
    """Load and validate every case (unknown keys are errors; names unique; tables valid)."""
    with path.open(encoding="utf-8") as fh:
        raw = yaml.safe_load(fh)
    corpus = Corpus.model_validate(raw)
    seen: set[str] = set()
    for case in corpus.cases:
        if case.name in seen:
            raise ValueError(f"{path}: case name {case.name!r} is used twice")
        seen.add(case.name)
        case._defaults = corpus.defaults
        try:
            table = case.table_for()
        except ValueError as exc:
            raise ValueError(f"{path}: case {case.name!r} has an invalid table: {exc}") from exc
        routed = {route["worker"] for route in table["routes"]}
        unknown = set(case.workers) - routed
        if unknown:
            raise ValueError(
                f"{path}: case {case.name!r} defines workers no route uses: {sorted(unknown)}"
            )
    return corpus.cases
