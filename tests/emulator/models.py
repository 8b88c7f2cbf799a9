"""The objects the emulator keeps, and how each one looks in an API answer."""

from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .multipart import Part

__all__ = [
    "SECRET_BINDING_TYPES",
    "Account",
    "DispatchNamespace",
    "KVNamespace",
    "Module",
    "RequestRecord",
    "Route",
    "Script",
    "Token",
    "Zone",
    "now_iso",
]

SECRET_BINDING_TYPES = frozenset({"secret_text", "secret_key"})


def now_iso() -> str:
    """The current time the way the API prints it."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class Account:
    """A Cloudflare account; ``wfp`` says whether it has Workers for Platforms."""

    id: str
    name: str
    wfp: bool = True
    created_on: str = field(default_factory=now_iso)

    def to_api(self) -> dict[str, Any]:
        """Account details as ``GET /accounts/{id}`` answers them."""
        return {
            "id": self.id,
            "name": self.name,
            "type": "standard",
            "created_on": self.created_on,
            "settings": {
                "enforce_twofactor": False,
                "abuse_contact_email": None,
            },
        }


@dataclass
class Token:
    """An API token. ``permissions`` None means every path family; else the allowed ones."""

    value: str
    id: str
    kind: str  # "user" | "account"
    account_id: str | None
    permissions: frozenset[str] | None
    status: str = "active"

    def allows(self, family: str | None) -> bool:
        """Whether the token's permission groups cover a path family."""
        return family is None or self.permissions is None or family in self.permissions

    def covers_account(self, account_id: str) -> bool:
        """Whether the token may act on ``account_id`` (user tokens without one: all)."""
        return self.account_id is None or self.account_id == account_id


@dataclass
class Zone:
    """A zone (domain) in an account."""

    id: str
    name: str
    account_id: str
    status: str = "active"
    created_on: str = field(default_factory=now_iso)

    def to_api(self, account_name: str) -> dict[str, Any]:
        """The zone object of ``GET /zones``."""
        return {
            "id": self.id,
            "name": self.name,
            "status": self.status,
            "paused": False,
            "type": "full",
            "development_mode": 0,
            "name_servers": ["ada.ns.cloudflare.com", "bob.ns.cloudflare.com"],
            "original_name_servers": None,
            "original_registrar": None,
            "original_dnshost": None,
            "vanity_name_servers": [],
            "created_on": self.created_on,
            "modified_on": self.created_on,
            "activated_on": self.created_on,
            "meta": {
                "step": 4,
                "custom_certificate_quota": 0,
                "page_rule_quota": 3,
                "phishing_detected": False,
            },
            "owner": {"id": None, "type": "user"},
            "account": {"id": self.account_id, "name": account_name},
            "tenant": {"id": None, "name": None},
            "tenant_unit": {"id": None},
            "permissions": ["#worker:edit", "#worker:read", "#zone:read"],
            "plan": {
                "id": "0feeeeeeeeeeeeeeeeeeeeeeeeeeeeee",
                "name": "Free Website",
                "price": 0,
                "currency": "USD",
                "frequency": "",
                "is_subscribed": False,
                "can_subscribe": False,
                "legacy_id": "free",
                "legacy_discount": False,
                "externally_managed": False,
            },
        }


@dataclass
class KVNamespace:
    """A Workers KV namespace."""

    id: str
    title: str
    account_id: str

    def to_api(self) -> dict[str, Any]:
        """The namespace object of the KV API."""
        return {"id": self.id, "title": self.title, "supports_url_encoding": True}


@dataclass
class Module:
    """One uploaded module: its bytes and the content type it was uploaded with."""

    name: str
    content: bytes
    content_type: str


@dataclass
class Script:
    """A Worker, either account-level (``namespace`` None) or a user Worker in a namespace.

    ``bindings`` keeps the upload order and holds secret bindings with their values; answers
    leave the values out (:meth:`public_bindings`), as the real API does.
    """

    name: str
    account_id: str
    namespace: str | None
    modules: dict[str, Module]
    main_module: str | None
    body_part: str | None
    bindings: list[dict[str, Any]]
    compatibility_date: str | None
    compatibility_flags: list[str]
    tag: str
    created_on: str
    modified_on: str
    usage_model: str = "standard"
    logpush: bool = False
    tags: list[str] = field(default_factory=list)
    tail_consumers: list[dict[str, Any]] = field(default_factory=list)
    observability: dict[str, Any] | None = None
    placement: dict[str, Any] | None = None
    limits: dict[str, Any] | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    migration_tag: str | None = None
    durable_object_classes: list[str] = field(default_factory=list)
    #: Cron expressions of the Worker's schedules (``GET .../schedules``; account Workers).
    schedules: list[str] = field(default_factory=list)

    @property
    def entry_point(self) -> str | None:
        """The entry module (``main_module``, or ``body_part`` for service-worker syntax)."""
        return self.main_module or self.body_part

    @property
    def etag(self) -> str:
        """A content hash that changes whenever the modules change."""
        digest = hashlib.sha256()
        for module in self.modules.values():
            digest.update(module.name.encode() + b"\0" + module.content_type.encode() + b"\0")
            digest.update(module.content)
        return digest.hexdigest()

    @property
    def secrets(self) -> dict[str, str]:
        """Secret values by name (test-side inspection only; never in an answer)."""
        return {
            b["name"]: str(b.get("text", ""))
            for b in self.bindings
            if b.get("type") in SECRET_BINDING_TYPES
        }

    @property
    def secret_names(self) -> list[str]:
        """Names of the secret bindings, in order."""
        return [b["name"] for b in self.bindings if b.get("type") in SECRET_BINDING_TYPES]

    def binding(self, name: str) -> dict[str, Any] | None:
        """The binding called ``name`` (with its secret value, if any)."""
        for b in self.bindings:
            if b.get("name") == name:
                return copy.deepcopy(b)
        return None

    def public_bindings(self) -> list[dict[str, Any]]:
        """Bindings as answers show them: secret values removed."""
        out: list[dict[str, Any]] = []
        for b in self.bindings:
            if b.get("type") == "secret_text":
                out.append({"name": b["name"], "type": "secret_text"})
            elif b.get("type") == "secret_key":
                out.append(
                    {
                        k: v
                        for k, v in b.items()
                        if k in {"name", "type", "algorithm", "format", "usages"}
                    }
                )
            else:
                out.append(copy.deepcopy(b))
        return out

    def to_api(self) -> dict[str, Any]:
        """The script object of uploads and lists."""
        return {
            "id": self.name,
            "tag": self.tag,
            "etag": self.etag,
            "handlers": ["fetch"],
            "named_handlers": [],
            "created_on": self.created_on,
            "modified_on": self.modified_on,
            "usage_model": self.usage_model,
            "compatibility_date": self.compatibility_date,
            "compatibility_flags": list(self.compatibility_flags),
            "has_assets": False,
            "has_modules": self.main_module is not None,
            "logpush": self.logpush,
            # Only when set: the SDK's Placement union has no empty member.
            **({"placement": copy.deepcopy(self.placement)} if self.placement else {}),
            "tags": list(self.tags),
            "tail_consumers": copy.deepcopy(self.tail_consumers),
            "last_deployed_from": "api",
            "migration_tag": self.migration_tag,
        }

    def to_upload_api(self) -> dict[str, Any]:
        """The answer to an upload: :meth:`to_api` and the two fields only the SDK's
        ``ScriptUpdateResponse`` has (``startup_time_ms``, ``entry_point``)."""
        return {**self.to_api(), "startup_time_ms": 1, "entry_point": self.entry_point}

    def settings_to_api(self) -> dict[str, Any]:
        """The ``.../settings`` answer: bindings without secret values, compatibility, etc."""
        return {
            "bindings": self.public_bindings(),
            "compatibility_date": self.compatibility_date,
            "compatibility_flags": list(self.compatibility_flags),
            "limits": copy.deepcopy(self.limits) if self.limits else {},
            "logpush": self.logpush,
            "observability": copy.deepcopy(self.observability)
            if self.observability
            else {"enabled": False, "head_sampling_rate": 1},
            # Only when set: the SDK's Placement union has no empty member.
            **({"placement": copy.deepcopy(self.placement)} if self.placement else {}),
            "tags": list(self.tags),
            "tail_consumers": copy.deepcopy(self.tail_consumers),
            "usage_model": self.usage_model,
        }


@dataclass
class DispatchNamespace:
    """A Workers for Platforms dispatch namespace and the user Workers in it."""

    id: str
    name: str
    account_id: str
    created_on: str
    modified_on: str
    trusted_workers: bool = False
    scripts: dict[str, Script] = field(default_factory=dict)

    def to_api(self) -> dict[str, Any]:
        """The namespace object of the dispatch namespace API."""
        return {
            "namespace_id": self.id,
            "namespace_name": self.name,
            "created_on": self.created_on,
            "created_by": self.account_id,
            "modified_on": self.modified_on,
            "modified_by": self.account_id,
            "script_count": len(self.scripts),
            "trusted_workers": self.trusted_workers,
        }


@dataclass
class Route:
    """A zone Worker route."""

    id: str
    zone_id: str
    pattern: str
    script: str | None

    def to_api(self) -> dict[str, Any]:
        """The route object of the routes API."""
        return {"id": self.id, "pattern": self.pattern, "script": self.script}


@dataclass
class RequestRecord:
    """One request the emulator received, as tests inspect it.

    ``path`` is relative to ``/client/v4``. ``headers`` are lower-cased with Authorization
    redacted. ``parts`` holds the parsed multipart body (None when the body is not multipart),
    ``json`` the parsed JSON body (None when it is not JSON).
    """

    seq: int
    time: float
    method: str
    path: str
    query: list[tuple[str, str]]
    headers: dict[str, str]
    body: bytes
    content_type: str | None
    parts: list[Part] | None
    json: Any
    route: str | None = None
    status: int | None = None
    fault: str | None = None

    def query_value(self, key: str) -> str | None:
        """First value of query parameter ``key``."""
        for k, v in self.query:
            if k == key:
                return v
        return None

    def part(self, name: str) -> Part | None:
        """The first multipart part whose module name (filename, else form name) is ``name``."""
        for p in self.parts or []:
            if p.module_name == name or (p.filename is None and p.name == name):
                return p
        return None
