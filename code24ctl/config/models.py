"""The shape of ``namespaces.yaml``: pydantic models and the rules each field obeys.

The file describes the whole platform: the workers, the routes in front of them and the
environments they run in. :mod:`code24ctl.config.loader` reads it into these models.
"""

from __future__ import annotations

import datetime
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from code24ctl.constants import (
    ACCOUNT_ENV_VAR,
)
from code24ctl.dispatch.routing import (
    DEFAULT_FALLBACK_STATUS,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_JSON_CHECK_BYTES,
    DEFAULT_TIMEOUT_MS,
    prefix_matches,
)
from code24ctl.errors import UsageError

# Cloudflare's rule for Worker script names, which aliases become inside the namespace.
WORKER_NAME_RE = re.compile(r"^[a-z0-9_-]{1,63}$")
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_ACCOUNT_ID_RE = re.compile(r"^[A-Za-z0-9]{1,64}$")
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
    if not re.match(r"^https?://[^/\s]+", value):
        raise ValueError(f"{value!r} is not an http(s) URL")
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


class WorkerConfig(_Strict):
    """One AI worker: where its code comes from and what to answer when it fails."""

    script: str | None = None
    path: str | None = None
    fallback: Any = None
    fallback_status: int = Field(default=DEFAULT_FALLBACK_STATUS, ge=200, le=599)
    timeout_ms: int = Field(default=DEFAULT_TIMEOUT_MS, gt=0, le=900_000)

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


class OutboundConfig(_Strict):
    """The optional outbound Worker that sees every subrequest of the user workers."""

    worker: WorkerName
    params: list[str] = Field(default_factory=list)


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
    workers: dict[WorkerName, WorkerConfig] = Field(min_length=1)
    routes: list[RouteConfig] = Field(min_length=1)
    environments: dict[str, EnvironmentConfig] = Field(min_length=1)

    @model_validator(mode="after")
    def _references(self) -> Config:
        problems: list[str] = []
        seen: dict[str, int] = {}
        for index, route in enumerate(self.routes):
            if route.worker not in self.workers:
                problems.append(
                    f"routes[{index}].worker: unknown worker {route.worker!r} "
                    f"(configured: {', '.join(sorted(self.workers))})"
                )
            if route.prefix in seen:
                problems.append(
                    f"routes[{index}].prefix: duplicate prefix {route.prefix!r} "
                    f"(also routes[{seen[route.prefix]}])"
                )
            seen.setdefault(route.prefix, index)
        for env_name, environment in self.environments.items():
            for key in ("upstreams", "direct"):
                for alias in getattr(environment, key) or {}:
                    if alias not in self.workers:
                        problems.append(
                            f"environments.{env_name}.{key}.{alias}: unknown worker {alias!r}"
                        )
        if problems:
            raise _ReferenceErrors(problems)
        return self


class _ReferenceErrors(ValueError):
    """Cross-field problems, each already prefixed with its dotted location."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class ValidationSummary(BaseModel):
    """What ``config validate --json`` prints."""

    path: str
    valid: bool
    platform: str
    workers: list[str]
    routes: list[str]
    environments: list[str]


@dataclass(frozen=True)
class ResolvedConfig:
    """The config with ``{env}`` expanded for one environment, plus where it came from."""

    path: str
    env_name: str
    config: Config

    @property
    def environment(self) -> EnvironmentConfig:
        """The chosen environment's settings."""
        return self.config.environments[self.env_name]

    @property
    def is_local(self) -> bool:
        return self.environment.is_local

    def account_id(self) -> str:
        """The Cloudflare account: ``CLOUDFLARE_ACCOUNT_ID`` wins over the config's value."""
        account = (os.environ.get(ACCOUNT_ENV_VAR) or self.config.account_id or "").strip()
        if account and not _ACCOUNT_ID_RE.match(account):
            # It becomes part of every API path: never let it change the path.
            raise UsageError(
                f"account id {account!r} is not a Cloudflare account id (letters and digits)",
                hint=f"check {ACCOUNT_ENV_VAR} or account_id in {self.path}",
            )
        if not account:
            raise UsageError(
                f"no Cloudflare account id: {ACCOUNT_ENV_VAR} is not set and the config has none",
                hint=f"export {ACCOUNT_ENV_VAR}=<account id> or set account_id in {self.path}",
            )
        return account

    def require_cloudflare(self) -> EnvironmentConfig:
        """The environment, refusing local ones for commands that talk to Cloudflare."""
        if self.is_local:
            raise UsageError(
                f"environment {self.env_name!r} is local (it has upstreams); "
                "this command needs a Cloudflare environment",
                hint=f"choose one of: {', '.join(self.cloudflare_environments())}",
            )
        return self.environment

    def cloudflare_environments(self) -> list[str]:
        return [n for n, e in self.config.environments.items() if not e.is_local]

    def namespace(self) -> str:
        """The environment's dispatch namespace name."""
        name = self.require_cloudflare().namespace
        assert name is not None  # guaranteed by EnvironmentConfig validation
        return name

    def dispatcher(self) -> str:
        """The environment's dispatcher Worker name."""
        name = self.require_cloudflare().dispatcher
        assert name is not None  # guaranteed by EnvironmentConfig validation
        return name
