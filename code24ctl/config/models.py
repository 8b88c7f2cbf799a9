"""The shape of ``namespaces.yaml``: pydantic models and the rules each field obeys.

The file describes the whole platform: the workers, the routes in front of them and the
environments they run in. :mod:`code24ctl.config.loader` reads it into these models.
"""

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Sequence
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    field_validator,
    model_validator,
)

from code24ctl.errors import UsageError
from code24ctl.route_defaults import (
    DEFAULT_FALLBACK_STATUS,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_JSON_CHECK_BYTES,
    DEFAULT_TIMEOUT_MS,
    prefix_matches,
)

# Cloudflare's rule for Worker script names, which aliases become inside the namespace.
WORKER_NAME_RE = re.compile(r"^[a-z0-9_-]{1,63}$")
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
ACCOUNT_ID_RE = re.compile(r"^[A-Za-z0-9]{1,64}$")
HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")

WORKER_NAME_RULE = "lowercase letters, digits, '-' and '_', at most 63 characters"


def _worker_name(value: str) -> str:
    # "{env}" is still literal when the file is checked for every environment at once.
    if not WORKER_NAME_RE.match(value.replace("{env}", "env")):
        raise ValueError(f"{value!r} is not a valid Worker name ({WORKER_NAME_RULE})")
    return value


def check_names(names: Sequence[str], what: str = "Worker name") -> list[str]:
    """Refuse (exit 2) names the API would reject, before any call uses them in a path.

    Workers and dispatch namespaces share Cloudflare's naming rule.
    """
    bad = [name for name in names if not WORKER_NAME_RE.match(name)]
    if bad:
        raise UsageError(f"not a valid {what}: {', '.join(bad)}", hint=WORKER_NAME_RULE)
    return list(names)


def _url_path(value: str) -> str:
    if not value.startswith("/"):
        raise ValueError(f"{value!r} must start with '/'")
    if "?" in value or "#" in value:
        raise ValueError(f"{value!r} must be a path, without '?' or '#'")
    if len(value) > 1 and value.endswith("/"):
        raise ValueError(f"{value!r} must not end with '/'")
    if any(segment in (".", "..") for segment in value.split("/")):
        raise ValueError(f"{value!r} must not contain '.' or '..' segments")
    return value


def _date_string(value: Any) -> Any:
    # YAML reads an unquoted 2025-01-01 as a date; the API wants the string.
    if isinstance(value, datetime.date):
        return value.isoformat()
    return value


def _check_date(value: str) -> str:
    if not _DATE_RE.match(value):
        raise ValueError(f"{value!r} is not a date like 2025-01-01")
    return value


def _http_url(value: str) -> str:
    # Checked here, not where it is used: `serve` and `probe` would otherwise crash on a port
    # out of range or a URL without a host.
    if len(value) > 2048 or any(c.isspace() or not c.isprintable() for c in value):
        raise ValueError("not an http(s) URL (too long, or it holds a space or a control)")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{value!r} is not an http(s) URL")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"{value!r}: the port must be a number from 1 to 65535") from None
    if not parts.hostname:
        raise ValueError(f"{value!r} has no host")
    if port == 0:
        raise ValueError(f"{value!r}: the port must be a number from 1 to 65535")
    if parts.username is not None or parts.password is not None:
        raise ValueError(f"{value!r}: credentials do not belong in a URL in the config")
    return value.rstrip("/")


WorkerName = Annotated[str, AfterValidator(_worker_name)]
UrlPath = Annotated[str, AfterValidator(_url_path)]
DateString = Annotated[str, BeforeValidator(_date_string), AfterValidator(_check_date)]
HttpUrl = Annotated[str, AfterValidator(_http_url)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class ProbeSample(_Strict):
    """A sample request ``probe`` sends to check a route."""

    method: str = "GET"
    path: str
    json_body: Any = Field(default=None, alias="json")
    body: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)

    @field_validator("method")
    @classmethod
    def _known_method(cls, value: str) -> str:
        method = value.upper()
        if method not in HTTP_METHODS:
            raise ValueError(f"{value!r} is not one of {', '.join(HTTP_METHODS)}")
        return method

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError(f"{value!r} must start with '/'")
        return value

    @model_validator(mode="after")
    def _one_body(self) -> ProbeSample:
        if "json_body" in self.model_fields_set and self.body is not None:
            raise ValueError("give either 'json' or 'body', not both")
        return self

    @property
    def has_json(self) -> bool:
        """Whether the sample sends a JSON body (``json: null`` counts)."""
        return "json_body" in self.model_fields_set


class WorkerLimits(_Strict):
    """Custom limits the dispatcher puts on one user Worker per call
    (``get(alias, {}, {limits: {cpuMs, subRequests}})``, workers-for-platforms custom limits)."""

    cpu_ms: int | None = Field(default=None, gt=0)
    subrequests: int | None = Field(default=None, gt=0)


class ObservabilityConfig(_Strict):
    """Workers Logs on a namespace copy: what an upload's ``metadata.observability`` takes
    (SDK ``workers_for_platforms.dispatch.namespaces.script_update_params.MetadataObservability``:
    ``enabled`` required, ``head_sampling_rate`` from 0 to 1, default 1)."""

    enabled: bool = True
    head_sampling_rate: float = Field(default=1.0, ge=0, le=1)


class WorkerConfig(_Strict):
    """One AI worker: where its code comes from and what to answer when it fails."""

    script: str | None = None
    path: str | None = None
    fallback: Any = None
    fallback_status: int = Field(default=DEFAULT_FALLBACK_STATUS, ge=200, le=599)
    timeout_ms: int = Field(default=DEFAULT_TIMEOUT_MS, gt=0, le=900_000)
    limits: WorkerLimits | None = None
    # Workers Logs on the copy (else the platform-wide ``observability``, else the source's own).
    observability: ObservabilityConfig | None = None

    @model_validator(mode="after")
    def _one_source(self) -> WorkerConfig:
        if (self.script is None) == (self.path is None):
            raise ValueError(
                "give exactly one of 'script' (an account Worker to copy) "
                "or 'path' (a local module file or folder)"
            )
        if self.script is not None:
            _worker_name(self.script.replace("{env}", "env"))
        return self

    @field_validator("fallback")
    @classmethod
    def _json_value(cls, value: Any) -> Any:
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"fallback must be plain JSON: {exc}") from None
        return value

    @property
    def source(self) -> str:
        """Human description of where the worker's code comes from."""
        return f"script {self.script}" if self.script else f"path {self.path}"


class RouteConfig(_Strict):
    """A path prefix on the dispatcher and the worker that answers it."""

    prefix: UrlPath
    worker: str
    strip: str | None = None
    probe: ProbeSample | None = None

    @model_validator(mode="after")
    def _strip_is_leading_part(self) -> RouteConfig:
        if self.strip is not None and self.strip not in ("", "/"):
            _url_path(self.strip)
            if not prefix_matches(self.prefix, self.strip):
                raise ValueError(
                    f"strip {self.strip!r} must be a leading part of prefix {self.prefix!r}"
                )
        if self.probe is not None and not prefix_matches(
            self.probe.path.split("?", 1)[0], self.prefix
        ):
            raise ValueError(f"probe path {self.probe.path!r} is not under prefix {self.prefix!r}")
        return self

    @property
    def effective_strip(self) -> str:
        """The leading part removed before forwarding (default: the whole prefix)."""
        strip = self.prefix if self.strip is None else self.strip
        return "" if strip == "/" else strip


# What the dispatcher can tell the outbound Worker about each call (it reads them as
# ``env.<name>``); the values are filled in per request by both dispatchers.
OutboundParam = Literal["worker", "environment", "request_id", "route"]


class OutboundConfig(_Strict):
    """The optional outbound Worker that sees every subrequest of the user workers.

    ``params`` names which per-call values it receives: ``worker`` (the alias), ``environment``,
    ``request_id`` and ``route`` (the matched prefix).
    """

    worker: WorkerName
    params: list[OutboundParam] = Field(default_factory=list)
    # Its code, for `serve --runtime workerd` (a module file or folder, as a worker's `path`):
    # locally it then sees every subrequest of the workers run from code.
    path: str | None = None


class AnalyticsConfig(_Strict):
    """Where the dispatcher records one data point per request (Workers Analytics Engine)."""

    dataset: Annotated[str, Field(pattern=r"^[A-Za-z0-9_]{1,64}$")]


class KpiTargets(_Strict):
    """The promises ``code24ctl stats`` checks traffic against."""

    json_share: float = Field(default=1.0, ge=0, le=1)
    max_fallback_share: float = Field(default=0.01, ge=0, le=1)
    p95_dispatch_ms: float = Field(default=500, gt=0)


class EnvironmentConfig(_Strict):
    """One environment: Cloudflare resources, or (local) upstream URLs."""

    namespace: WorkerName | None = None
    dispatcher: WorkerName | None = None
    outbound: OutboundConfig | None = None
    kv_namespace: str | None = None
    zone: str | None = None
    routes: list[str] = Field(default_factory=list)
    base_url: HttpUrl | None = None
    vars: dict[str, str] = Field(default_factory=dict)
    upstreams: dict[str, HttpUrl] | None = None
    direct: dict[str, HttpUrl] = Field(default_factory=dict)
    analytics: AnalyticsConfig | None = None
    # Where `serve --metrics-port` publishes Prometheus metrics (local environments).
    metrics_url: HttpUrl | None = None

    @model_validator(mode="after")
    def _complete(self) -> EnvironmentConfig:
        if self.upstreams is None:
            missing = [name for name in ("namespace", "dispatcher") if getattr(self, name) is None]
            if missing:
                raise ValueError(
                    f"a Cloudflare environment needs {' and '.join(missing)} "
                    "(a local one needs 'upstreams' and 'base_url' instead)"
                )
        elif self.base_url is None:
            raise ValueError("a local environment (with 'upstreams') needs 'base_url'")
        if self.upstreams is None and self.dispatcher and not self.dispatcher[0].islower():
            # RFC 8941 section 3.2: a dictionary key starts with a lowercase letter or "*".
            raise ValueError(
                f"dispatcher {self.dispatcher!r} cannot key the Cloudflare-Workers-Version-"
                "Overrides header (an RFC 8941 dictionary key starts with a lowercase letter), "
                "so a canary's probe could never reach its new version: start the name with a "
                "lowercase letter"
            )
        if self.outbound is not None and self.outbound.worker == self.dispatcher:
            raise ValueError(
                f"outbound worker {self.outbound.worker!r} is the dispatcher itself: every "
                "subrequest of the workers would loop back through the dispatcher"
            )
        for pattern in self.routes:
            if "/" not in pattern or pattern.startswith(("http://", "https://")):
                raise ValueError(f"route {pattern!r} must look like 'host.example.com/path/*'")
        return self

    @property
    def is_local(self) -> bool:
        """A local environment is served by ``code24ctl serve`` over plain upstream URLs."""
        return self.upstreams is not None


class ProbeDefaults(_Strict):
    """The config's ``probe:`` defaults for ``code24ctl probe`` (its options override them)."""

    max_latency_ms: int = Field(default=500, gt=0)
    timeout_s: float = Field(default=10.0, gt=0)


class Config(_Strict):
    """The whole of namespaces.yaml, validated."""

    platform: str
    account_id: str | None = None
    compatibility_date: DateString
    compatibility_flags: list[str] = Field(default_factory=list)
    max_body_bytes: int = Field(default=DEFAULT_MAX_BODY_BYTES, gt=0)
    max_json_check_bytes: int = Field(default=DEFAULT_MAX_JSON_CHECK_BYTES, gt=0)
    probe: ProbeDefaults = Field(default_factory=ProbeDefaults)
    kpi: KpiTargets = Field(default_factory=KpiTargets)
    # Workers Logs on every namespace copy whose worker sets none of its own, and on the
    # dispatcher (deploy), so that `logs --request-id` finds the dispatcher's line.
    observability: ObservabilityConfig | None = None
    workers: dict[WorkerName, WorkerConfig] = Field(min_length=1)
    routes: list[RouteConfig] = Field(min_length=1)
    environments: dict[str, EnvironmentConfig] = Field(min_length=1)
    # The environment commands use without --env or CODE24_ENV.
    default_env: str | None = None
    # Each setting left empty by an unset lone ${VAR}, and that variable's name (dotted key ->
    # name; set by the loader), so later errors name the variable instead of "none".
    _unset_variables: dict[str, str] = PrivateAttr(default_factory=dict)

    def unset_variable(self, key: str) -> str | None:
        """The unset variable that left ``key`` (dotted) empty, if one did."""
        return self._unset_variables.get(key)

    def observability_of(self, alias: str) -> ObservabilityConfig | None:
        """The Workers Logs setting ``bind`` gives ``alias``'s copy (None: the source's own)."""
        return self.workers[alias].observability or self.observability

    @model_validator(mode="after")
    def _references(self) -> Config:
        from code24ctl.config.checks import reference_problems

        problems = reference_problems(self.model_dump(by_alias=True))
        if problems:
            raise ReferenceProblems(problems)
        return self


#: Where in the config a problem is: keys and list indexes, outermost first.
Location = tuple[str | int, ...]


def _levels() -> dict[str, type[BaseModel]]:
    return {
        "at the top level": Config,
        "under environments.<name>": EnvironmentConfig,
        "under workers.<alias>": WorkerConfig,
        "in a routes entry": RouteConfig,
        "under a route's probe": ProbeSample,
        "under probe": ProbeDefaults,
    }


def keys_at(parent: tuple[str, ...]) -> list[str]:
    """The keys a mapping at ``parent`` (a YAML location) may hold; [] when free-form."""
    model: type[BaseModel] | None = None
    if not parent:
        model = Config
    elif parent == ("probe",):
        model = ProbeDefaults
    elif len(parent) == 2 and parent[0] in ("environments", "workers", "routes"):
        homes: dict[str, type[BaseModel]] = {
            "environments": EnvironmentConfig,
            "workers": WorkerConfig,
            "routes": RouteConfig,
        }
        model = homes[parent[0]]
    elif len(parent) == 3 and parent[0] == "routes" and parent[2] == "probe":
        model = ProbeSample
    elif len(parent) == 3 and parent[0] == "environments" and parent[2] == "outbound":
        model = OutboundConfig
    if model is None:
        return []
    return [field.alias or name for name, field in model.model_fields.items()]


def misplaced_key_home(loc: tuple[str, ...]) -> str | None:
    """Where an unknown key at ``loc`` belongs, when it is a known key of another level."""
    if not loc:
        return None
    key = loc[-1]
    for where, model in _levels().items():
        names = {field.alias or name for name, field in model.model_fields.items()}
        if key in names and key not in keys_at(loc[:-1]):
            return where
    return None


class ReferenceProblems(ValueError):
    """Cross-field problems, each a ``(location, message)`` pair (the loader adds the line)."""

    def __init__(self, problems: list[tuple[Location, str]]) -> None:
        super().__init__("; ".join(message for _, message in problems))
        self.problems = problems


class ValidationSummary(BaseModel):
    """What ``config validate --json`` prints."""

    path: str
    valid: bool
    platform: str
    workers: list[str]
    routes: list[str]
    environments: list[str]

    def counts(self) -> dict[str, int]:
        """The ``summary`` of ``config validate --json``: what the file defines."""
        return {
            "workers": len(self.workers),
            "routes": len(self.routes),
            "environments": len(self.environments),
        }
