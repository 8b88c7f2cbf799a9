"""The ASGI app: the Cloudflare v4 API slice at ``/client/v4``, controls at ``/__emulator``.

Request flow: record the request, apply injected latency and faults (edge-level, before auth,
like Cloudflare's own limits), authenticate, check account / zone / entitlement, then run the
handler against :class:`EmulatorState` under its lock. Every API answer is the v4 envelope.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import re
import secrets
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route as StarletteRoute
from starlette.routing import WebSocketRoute
from starlette.types import ASGIApp
from starlette.websockets import WebSocket

from . import errors
from .analytics import answer_sql
from .contract import CALLED, CONTRACTS, answer_violations, refusal, request_violations
from .errors import ApiError
from .faults import APPLIED_KINDS, CONNECTION_KINDS
from .models import SECRET_BINDING_TYPES, Module, RequestRecord, Script, Token, now_iso
from .multipart import MultipartError, Part, build_multipart, parse_multipart
from .state import EmulatorState, Fault, _normalize_kind
from .tail import serve_tail_socket
from .telemetry import serve_live_tail_socket
from .versions import routes as version_routes
from .versions import version_override

__all__ = ["API_PREFIX", "CONTROL_PREFIX", "create_app"]

API_PREFIX = "/client/v4"
CONTROL_PREFIX = "/__emulator"

_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]


# ---------------------------------------------------------------------------------- context
@dataclass
class Ctx:
    """What a handler sees of one request."""

    state: EmulatorState
    method: str
    path: str
    params: dict[str, str]
    query: list[tuple[str, str]]
    headers: dict[str, str]
    body: bytes
    token: Token | None
    record: RequestRecord
    extra_headers: dict[str, str] = field(default_factory=dict)

    def q(self, key: str) -> str | None:
        """First value of a query parameter."""
        return self.record.query_value(key)

    def json(self) -> Any:
        """The JSON body (400 if it does not parse)."""
        if not self.body:
            return {}
        try:
            return json.loads(self.body)
        except ValueError as exc:
            raise errors.bad_request(f"Could not parse the request body as JSON: {exc}") from None

    def json_object(self) -> dict[str, Any]:
        """The JSON body, which must be an object."""
        data = self.json()
        if not isinstance(data, dict):
            raise errors.bad_request("The request body must be a JSON object.")
        return data

    def parts(self) -> list[Part]:
        """The multipart body (400 10001 when the body is not multipart/form-data)."""
        ctype = self.headers.get("content-type", "")
        if not ctype.lower().startswith("multipart/form-data"):
            raise ApiError(400, 10001, "Content-Type must be multipart/form-data.")
        try:
            return parse_multipart(self.body, ctype)
        except MultipartError as exc:
            raise errors.bad_request(f"Malformed multipart body: {exc}", code=10021) from None


Handler = Callable[[Ctx], Response]


def ok(
    result: Any,
    *,
    result_info: dict[str, Any] | None = None,
    status: int = 200,
    messages: list[dict[str, Any]] | None = None,
) -> Response:
    """A success envelope."""
    body: dict[str, Any] = {
        "success": True,
        "errors": [],
        "messages": messages or [],
        "result": result,
    }
    if result_info is not None:
        body["result_info"] = result_info
    return JSONResponse(body, status_code=status)


def error_response(exc: ApiError) -> Response:
    """A failure envelope."""
    body = {"success": False, "errors": exc.errors(), "messages": [], "result": None}
    return JSONResponse(body, status_code=exc.status, headers=exc.headers)


_REASONS = {
    500: "Internal server error",
    502: "Bad gateway",
    503: "Service temporarily unavailable",
    504: "Gateway time-out",
    520: "Web server is returning an unknown error",
    521: "Web server is down",
    522: "Connection timed out",
    524: "A timeout occurred",
}


def _ray() -> str:
    return secrets.token_hex(8) + "-SJC"


def html_error_page(status: int, retry_after: str | None = None) -> Response:
    """The HTML page Cloudflare's edge answers with when the API behind it fails."""
    reason = _REASONS.get(status, "Error")
    ray = _ray()
    page = f"""<!DOCTYPE html>
<!--[if lt IE 7]> <html class="no-js ie6 oldie" lang="en-US"> <![endif]-->
<html lang="en-US">
<head>
<title>api.cloudflare.com | {status}: {reason}</title>
<meta charset="UTF-8" />
<meta http-equiv="Content-Type" content="text/html; charset=UTF-8" />
<meta name="robots" content="noindex, nofollow" />
</head>
<body>
<div id="cf-wrapper">
  <div id="cf-error-details" class="cf-error-details-wrapper">
    <h1><span class="cf-error-type">Error</span> <span class="cf-error-code">{status}</span></h1>
    <h2 class="cf-subheadline">{reason}</h2>
    <p>Cloudflare Ray ID: <strong class="font-semibold">{ray}</strong></p>
  </div>
</div>
</body>
</html>
"""
    headers = {"cf-ray": ray, "server": "cloudflare"}
    if retry_after is not None:
        headers["Retry-After"] = retry_after
    return Response(page, status_code=status, media_type="text/html", headers=headers)


def fault_response(fault: Fault) -> Response:
    """The answer for an injected fault."""
    if fault.kind == "429":
        return error_response(errors.rate_limited(fault.retry_after or "1"))
    if fault.kind.startswith("html"):
        return html_error_page(fault.status, fault.retry_after)
    if fault.kind.startswith("empty"):
        return Response(b"", status_code=fault.status)
    if fault.kind.startswith("plain"):
        page = html_error_page(fault.status).body
        return Response(page, status_code=fault.status, media_type="text/plain")
    exc = ApiError(fault.status, 10013 if fault.status >= 500 else 10000, "Injected fault")
    if fault.retry_after is not None:
        exc.headers["Retry-After"] = fault.retry_after
    return error_response(exc)


def multipart_content(script: Script) -> Response:
    """A Worker's modules as multipart/form-data, entry module named in ``cf-entrypoint``.

    A service-worker Worker (``body_part``) is answered as its one script in plain text, the
    way wrangler's cfetch/internal.ts expects content/v2 to answer it (anything not multipart
    is read as a single service-worker file)."""
    if script.main_module is None and script.body_part is not None:
        return Response(
            script.modules[script.body_part].content,
            media_type="application/javascript",
            headers={"cf-entrypoint": script.body_part},
        )
    body, ctype = build_multipart(
        (m.name, m.name, m.content_type, m.content) for m in script.modules.values()
    )
    headers = {"cf-entrypoint": script.entry_point or ""}
    return Response(body, headers=headers, media_type=ctype)


# ---------------------------------------------------------------------------------- paging
def _int_param(ctx: Ctx, key: str, default: int, low: int, high: int) -> int:
    raw = ctx.q(key)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise errors.bad_request(f"{key} must be an integer", code=10001) from None
    if not low <= value <= high:
        raise errors.bad_request(f"{key} must be between {low} and {high}", code=10001)
    return value


def page_v4(
    ctx: Ctx, items: list[Any], default_per_page: int = 20, max_per_page: int = 1000
) -> Response:
    """``page``/``per_page`` paging with the v4 ``result_info``."""
    page = _int_param(ctx, "page", 1, 1, 1_000_000)
    if ctx.state.ignore_page:
        page = 1
    per_page = _int_param(ctx, "per_page", default_per_page, 1, max_per_page)
    total = len(items)
    chunk = items[(page - 1) * per_page : page * per_page]
    info = {
        "page": page,
        "per_page": per_page,
        "count": len(chunk),
        "total_count": total,
        "total_pages": max(1, -(-total // per_page)),
    }
    return ok(chunk, result_info=info)


def _encode_cursor(name: str) -> str:
    return base64.urlsafe_b64encode(name.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> str:
    try:
        return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise errors.bad_request("invalid cursor", code=10001) from None


def page_cursor(ctx: Ctx, named: list[tuple[str, Any]], default_limit: int = 100) -> Response:
    """``limit``/``cursor`` paging over name-sorted items (``result_info.cursor``: next page)."""
    limit = _int_param(ctx, "limit", default_limit, 1, 1000)
    cursor = ctx.q("cursor")
    items = sorted(named, key=lambda kv: kv[0])
    if cursor:
        after = _decode_cursor(cursor)
        items = [kv for kv in items if kv[0] > after]
    chunk = items[:limit]
    more = len(items) > limit
    info = {
        "count": len(chunk),
        "per_page": limit,
        "cursor": _encode_cursor(chunk[-1][0]) if more and chunk else "",
    }
    if ctx.state.omit_cursor:
        del info["cursor"]
    return ok([v for _, v in chunk], result_info=info)


# ---------------------------------------------------------------------------------- helpers
def _namespace(ctx: Ctx) -> Any:
    ns = ctx.state._namespaces[ctx.params["account_id"]].get(ctx.params["namespace"])
    if ns is None:
        raise errors.namespace_not_found()
    return ns


def _container(ctx: Ctx) -> dict[str, Script]:
    if "namespace" in ctx.params:
        scripts: dict[str, Script] = _namespace(ctx).scripts
        return scripts
    return ctx.state._scripts[ctx.params["account_id"]]


def _script(ctx: Ctx) -> Script:
    script = _container(ctx).get(ctx.params["script"])
    if script is None:
        raise errors.script_not_found()
    return script


def _parse_upload(ctx: Ctx) -> tuple[dict[str, Any], list[Module]]:
    parts = ctx.parts()
    metadata: dict[str, Any] | None = None
    modules: list[Module] = []
    for part in parts:
        if part.name == "metadata" and part.filename is None:
            try:
                loaded = json.loads(part.data)
            except ValueError:
                raise errors.script_invalid("The metadata part is not valid JSON.") from None
            if not isinstance(loaded, dict):
                raise errors.script_invalid("The metadata part must be a JSON object.")
            metadata = loaded
            continue
        name = part.module_name
        if not name:
            raise errors.script_invalid("Every module part needs a name or filename.")
        modules.append(Module(name, part.data, part.content_type or "application/octet-stream"))
    if metadata is None:
        raise errors.script_invalid("The upload has no metadata part.")
    if not modules:
        raise errors.script_invalid("The upload has no module parts: at least one is required.")
    return metadata, modules


def _settings_patch(ctx: Ctx) -> dict[str, Any]:
    ctype = ctx.headers.get("content-type", "").lower()
    if ctype.startswith("application/json"):
        data = ctx.json_object()
        return data.get("settings", data) if isinstance(data.get("settings"), dict) else data
    for part in ctx.parts():
        if part.name == "settings":
            try:
                loaded = json.loads(part.data)
            except ValueError:
                raise errors.script_invalid("The settings part is not valid JSON.") from None
            if not isinstance(loaded, dict):
                raise errors.script_invalid("The settings part must be a JSON object.")
            return loaded
    return {}


def _apply_settings(ctx: Ctx, script: Script, patch: dict[str, Any]) -> None:
    state = ctx.state
    if "bindings" in patch:
        script.bindings = state._validate_bindings(
            script.account_id,
            patch["bindings"],
            script.modules,
            script,
            [],
            "strict",
            inherit_secrets_without_text=True,
        )
    if "compatibility_date" in patch:
        script.compatibility_date = patch["compatibility_date"]
    if "compatibility_flags" in patch:
        flags = patch["compatibility_flags"]
        if not isinstance(flags, list):
            raise errors.script_invalid("compatibility_flags must be a list of strings.")
        script.compatibility_flags = list(flags)
    for key in ("logpush", "usage_model"):
        if key in patch:
            setattr(script, key, patch[key])
    for key in ("tags", "tail_consumers"):
        if key in patch:
            setattr(script, key, list(patch[key] or []))
    for key in ("observability", "placement", "limits"):
        if key in patch:
            setattr(script, key, patch[key])
    script.modified_on = now_iso()


def _put_secret(ctx: Ctx) -> Response:
    script = _script(ctx)
    body = ctx.json_object()
    name, stype = body.get("name"), body.get("type")
    if not isinstance(name, str) or not name:
        raise errors.bad_request("name is required", code=10021)
    if stype not in SECRET_BINDING_TYPES:
        raise errors.bad_request("type must be secret_text or secret_key", code=10021)
    if stype == "secret_text" and not isinstance(body.get("text"), str):
        raise errors.bad_request("text is required for a secret_text secret", code=10021)
    if any(
        b["name"] == name and b.get("type") not in SECRET_BINDING_TYPES for b in script.bindings
    ):
        raise errors.script_invalid(f'Binding "{name}" already exists and is not a secret.')
    binding = {k: v for k, v in body.items() if v is not None}
    script.bindings = [b for b in script.bindings if b["name"] != name] + [binding]
    script.modified_on = now_iso()
    return ok({"name": name, "type": stype})


def _secret_binding(ctx: Ctx) -> dict[str, Any]:
    script = _script(ctx)
    name = ctx.params["secret"]
    for b in script.bindings:
        if b["name"] == name and b.get("type") in SECRET_BINDING_TYPES:
            return b
    raise errors.secret_not_found(name)


# ---------------------------------------------------------------------------------- handlers
def verify_user_token(ctx: Ctx) -> Response:
    tok = ctx.token
    if tok is None or tok.kind != "user":
        raise errors.invalid_token()
    return ok(
        {"id": tok.id, "status": tok.status},
        messages=[{"code": 10000, "message": "This API Token is valid and active", "type": None}],
    )


def verify_account_token(ctx: Ctx) -> Response:
    tok = ctx.token
    if tok is None or tok.kind != "account" or tok.account_id != ctx.params["account_id"]:
        raise errors.invalid_token()
    return ok(
        {"id": tok.id, "status": tok.status},
        messages=[{"code": 10000, "message": "This API Token is valid and active", "type": None}],
    )


def list_accounts(ctx: Ctx) -> Response:
    assert ctx.token is not None
    tok = ctx.token
    items = [a.to_api() for a in ctx.state._accounts.values() if tok.covers_account(a.id)]
    return page_v4(ctx, items)


def get_account(ctx: Ctx) -> Response:
    return ok(ctx.state._accounts[ctx.params["account_id"]].to_api())


def ns_list(ctx: Ctx) -> Response:
    return ok([ns.to_api() for ns in ctx.state._namespaces[ctx.params["account_id"]].values()])


def ns_create(ctx: Ctx) -> Response:
    body = ctx.json_object()
    name = body.get("name")
    if not isinstance(name, str):
        raise errors.bad_request("name is required", code=10021)
    ns = ctx.state._create_namespace(
        ctx.params["account_id"], name, bool(body.get("trusted_workers"))
    )
    return ok(ns.to_api())


def ns_get(ctx: Ctx) -> Response:
    return ok(_namespace(ctx).to_api())


def ns_put(ctx: Ctx) -> Response:
    ns = _namespace(ctx)
    body = ctx.json_object()
    if "name" in body and body["name"] != ns.name:
        raise errors.namespace_rename()
    if "trusted_workers" in body:
        ns.trusted_workers = bool(body["trusted_workers"])
    ns.modified_on = now_iso()
    return ok(ns.to_api())


def ns_delete(ctx: Ctx) -> Response:
    ns = _namespace(ctx)
    del ctx.state._namespaces[ctx.params["account_id"]][ns.name]
    return ok(None)


def script_list_cursor(ctx: Ctx) -> Response:
    scripts = _container(ctx)
    return page_cursor(ctx, [(name, s.to_api()) for name, s in scripts.items()])


def script_list(ctx: Ctx) -> Response:
    return ok([s.to_api() for s in _container(ctx).values()])


def script_put(ctx: Ctx) -> Response:
    metadata, modules = _parse_upload(ctx)
    script = ctx.state._put_script(
        ctx.params["account_id"],
        ctx.params.get("namespace"),
        ctx.params["script"],
        metadata,
        modules,
        bindings_inherit=ctx.q("bindings_inherit"),
    )
    answer = script.to_upload_api()
    if "namespace" not in ctx.params:
        # The version this PUT created and deployed, where wrangler reads it.
        versions = ctx.state.versions
        answer["deployment_id"] = versions.latest_version_id(script.account_id, script.name)
    return ok(answer)


def ns_script_get(ctx: Ctx) -> Response:
    script = _script(ctx)
    return ok(
        {
            "created_on": script.created_on,
            "modified_on": script.modified_on,
            "dispatch_namespace": ctx.params["namespace"],
            "script": script.to_api(),
        }
    )


def account_script_get(ctx: Ctx) -> Response:
    script = _script(ctx)
    if script.main_module is None and script.body_part is not None:
        module = script.modules[script.body_part]
        return Response(module.content, media_type=module.content_type)
    return multipart_content(script)


def script_delete(ctx: Ctx) -> Response:
    script = _script(ctx)
    del _container(ctx)[script.name]
    return ok(None)


def script_content_get(ctx: Ctx) -> Response:
    return multipart_content(_script(ctx))


def script_content_put(ctx: Ctx) -> Response:
    script = _script(ctx)
    metadata, modules = _parse_upload(ctx)
    body_part = ctx.headers.get("cf-worker-body-part")
    merged = dict(script.metadata)
    merged.update(
        {
            "main_module": metadata.get("main_module"),
            "body_part": metadata.get("body_part", body_part),
            "bindings": script.bindings,
            "compatibility_date": script.compatibility_date,
            "compatibility_flags": script.compatibility_flags,
            "keep_bindings": [],
        }
    )
    updated = ctx.state._put_script(
        script.account_id, script.namespace, script.name, merged, modules
    )
    return ok(updated.to_api())


def settings_get(ctx: Ctx) -> Response:
    return ok(_script(ctx).settings_to_api())


def settings_patch(ctx: Ctx) -> Response:
    script = _script(ctx)
    _apply_settings(ctx, script, _settings_patch(ctx))
    return ok(script.settings_to_api())


# The script's own settings, which no version carries (SDK workers.scripts.settings; wrangler
# patches them after a version upload, "patchNonVersionedScriptSettings").
NON_VERSIONED_SETTINGS = ("logpush", "observability", "tags", "tail_consumers")


def script_settings_get(ctx: Ctx) -> Response:
    script = _script(ctx)
    answer: dict[str, Any] = {
        "logpush": script.logpush,
        "tags": list(script.tags),
        "tail_consumers": script.tail_consumers,
    }
    if script.observability:
        answer["observability"] = script.observability
    return ok(answer)


def script_settings_patch(ctx: Ctx) -> Response:
    script = _script(ctx)
    body = ctx.json_object()
    patch = {k: body[k] for k in NON_VERSIONED_SETTINGS if k in body}
    tags = patch.get("tags")
    # docs: workers-for-platforms/configuration/tags, "a maximum of eight tags per script".
    if isinstance(tags, list) and len(tags) > 8:
        raise errors.script_invalid("A script can have at most 8 tags.")
    _apply_settings(ctx, script, patch)
    return script_settings_get(ctx)


def schedules_get(ctx: Ctx) -> Response:
    """An account Worker's cron schedules (SDK ``workers.scripts.schedules.get``)."""
    script = _script(ctx)
    return ok(
        {
            "schedules": [
                {"cron": cron, "created_on": script.created_on, "modified_on": script.modified_on}
                for cron in script.schedules
            ]
        }
    )


def bindings_get(ctx: Ctx) -> Response:
    return ok(_script(ctx).public_bindings())


def secrets_put(ctx: Ctx) -> Response:
    return _put_secret(ctx)


def secrets_list(ctx: Ctx) -> Response:
    script = _script(ctx)
    return ok(
        [
            {"name": b["name"], "type": b["type"]}
            for b in script.bindings
            if b.get("type") in SECRET_BINDING_TYPES
        ]
    )


def secret_get(ctx: Ctx) -> Response:
    binding = _secret_binding(ctx)
    return ok({"name": binding["name"], "type": binding["type"]})


def secret_delete(ctx: Ctx) -> Response:
    binding = _secret_binding(ctx)
    script = _script(ctx)
    script.bindings = [b for b in script.bindings if b is not binding]
    return ok(None)


def kv_list(ctx: Ctx) -> Response:
    items = [k.to_api() for k in ctx.state._kv[ctx.params["account_id"]].values()]
    return page_v4(ctx, items)


def kv_create(ctx: Ctx) -> Response:
    title = ctx.json_object().get("title")
    if not isinstance(title, str):
        raise errors.bad_request("title is required", code=10019)
    return ok(ctx.state._create_kv(ctx.params["account_id"], title).to_api())


def _kv(ctx: Ctx) -> Any:
    kv = ctx.state._kv[ctx.params["account_id"]].get(ctx.params["kv_id"])
    if kv is None:
        raise errors.kv_not_found()
    return kv


def kv_get(ctx: Ctx) -> Response:
    return ok(_kv(ctx).to_api())


def kv_put(ctx: Ctx) -> Response:
    kv = _kv(ctx)
    title = ctx.json_object().get("title")
    if not isinstance(title, str) or not title:
        raise errors.bad_request("title is required", code=10019)
    others = ctx.state._kv[ctx.params["account_id"]].values()
    if any(k.title == title and k.id != kv.id for k in others):
        raise errors.kv_title_exists()
    kv.title = title
    return ok(None)


def kv_delete(ctx: Ctx) -> Response:
    kv = _kv(ctx)
    del ctx.state._kv[ctx.params["account_id"]][kv.id]
    return ok(None)


def analytics_sql(ctx: Ctx) -> Response:
    return answer_sql(ctx.state.analytics, ctx.params["account_id"], ctx.body)


def _tailed_script(ctx: Ctx) -> str:
    name = ctx.params["script"]
    if ctx.state.account_script(ctx.params["account_id"], name) is None:
        raise errors.script_not_found()
    return name


def tail_create(ctx: Ctx) -> Response:
    session = ctx.state.tails.create(ctx.params["account_id"], _tailed_script(ctx))
    return ok(session.to_api(ctx.headers.get("host", "127.0.0.1")))


def tail_list(ctx: Ctx) -> Response:
    """The newest live session, one object as the SDK's ``TailGetResponse`` has it."""
    live = ctx.state.tails.live(ctx.params["account_id"], _tailed_script(ctx))
    if not live:
        raise errors.tail_not_found()
    return ok(live[-1].to_api(ctx.headers.get("host", "127.0.0.1")))


def tail_delete(ctx: Ctx) -> Response:
    if not ctx.state.tails.delete(
        ctx.params["account_id"], _tailed_script(ctx), ctx.params["tail_id"]
    ):
        raise errors.tail_not_found()
    return ok(None)


def telemetry_query(ctx: Ctx) -> Response:
    return ok(ctx.state.telemetry.query(ctx.params["account_id"], ctx.json_object()))


def telemetry_keys(ctx: Ctx) -> Response:
    return ok(ctx.state.telemetry.keys(ctx.params["account_id"], ctx.json_object()))


def telemetry_values(ctx: Ctx) -> Response:
    body = ctx.json_object()
    if not isinstance(body.get("key"), str):
        raise errors.bad_request("key is required")
    return ok(ctx.state.telemetry.values(ctx.params["account_id"], body))


def telemetry_live_tail(ctx: Ctx) -> Response:
    tail = ctx.state.telemetry.open_tail(ctx.params["account_id"], ctx.json_object())
    host = ctx.headers.get("host", "127.0.0.1")
    return ok({"wsUrl": f"ws://{host}/observability/live-tail/{tail.id}"})


def telemetry_heartbeat(ctx: Ctx) -> Response:
    script = ctx.json_object().get("scriptId")
    ctx.state.telemetry.heartbeat(ctx.params["account_id"], script)
    return ok(None)


def zones_list(ctx: Ctx) -> Response:
    assert ctx.token is not None
    state = ctx.state
    name = (ctx.q("name") or "").lower()
    account_id = ctx.q("account.id")
    account_name = ctx.q("account.name")
    status = ctx.q("status")
    items = []
    for zone in state._zones.values():
        account = state._accounts[zone.account_id]
        if not ctx.token.covers_account(zone.account_id):
            continue
        if name and zone.name != name:
            continue
        if account_id and zone.account_id != account_id:
            continue
        if account_name and account.name != account_name:
            continue
        if status and zone.status != status:
            continue
        items.append(zone.to_api(account.name))
    items.sort(key=lambda z: (str(z["name"]), str(z["id"])))
    return page_v4(ctx, items, default_per_page=20, max_per_page=50)


def zone_get(ctx: Ctx) -> Response:
    zone = ctx.state._zones[ctx.params["zone_id"]]
    return ok(zone.to_api(ctx.state._accounts[zone.account_id].name))


def routes_list(ctx: Ctx) -> Response:
    routes = [r.to_api() for r in ctx.state._routes[ctx.params["zone_id"]].values()]
    if ctx.state.routes_per_page is not None:
        per_page = ctx.state.routes_per_page
        return page_v4(ctx, routes, default_per_page=per_page, max_per_page=per_page)
    return ok(routes)


def route_create(ctx: Ctx) -> Response:
    body = ctx.json_object()
    route = ctx.state._create_route(ctx.params["zone_id"], body.get("pattern"), body.get("script"))
    return ok(route.to_api())


def _route(ctx: Ctx) -> Any:
    route = ctx.state._routes[ctx.params["zone_id"]].get(ctx.params["route_id"])
    if route is None:
        raise errors.route_not_found()
    return route


def route_get(ctx: Ctx) -> Response:
    return ok(_route(ctx).to_api())


def route_put(ctx: Ctx) -> Response:
    route = _route(ctx)
    body = ctx.json_object()
    zone = ctx.state._zones[ctx.params["zone_id"]]
    ctx.state._check_route(zone, body.get("pattern"), body.get("script"), exclude=route.id)
    route.pattern = body["pattern"]
    route.script = body.get("script")
    return ok(route.to_api())


def route_delete(ctx: Ctx) -> Response:
    route = _route(ctx)
    del ctx.state._routes[ctx.params["zone_id"]][route.id]
    return ok({"id": route.id})


# ---------------------------------------------------------------------------------- routing
@dataclass(frozen=True)
class ApiRoute:
    """One endpoint: method, path template, permission family, handler."""

    method: str
    template: str
    family: str | None
    handler: Handler
    regex: re.Pattern[str]

    @property
    def key(self) -> str:
        """How the request log and counters name this endpoint."""
        return f"{self.method} {self.template}"


_A = "/accounts/{account_id}"
_NS = _A + "/workers/dispatch/namespaces/{namespace}"
_NSS = _NS + "/scripts/{script}"
_WS = _A + "/workers/scripts/{script}"
_KV = _A + "/storage/kv/namespaces"
_Z = "/zones/{zone_id}"
_OT = _A + "/workers/observability/telemetry"

_TABLE: list[tuple[str, str, str | None, Handler]] = [
    ("GET", "/user/tokens/verify", None, verify_user_token),
    ("GET", "/accounts", "account", list_accounts),
    ("GET", _A, "account", get_account),
    ("GET", _A + "/tokens/verify", None, verify_account_token),
    ("GET", _A + "/workers/dispatch/namespaces", "dispatch", ns_list),
    ("POST", _A + "/workers/dispatch/namespaces", "dispatch", ns_create),
    ("GET", _NS, "dispatch", ns_get),
    ("PUT", _NS, "dispatch", ns_put),
    ("DELETE", _NS, "dispatch", ns_delete),
    ("GET", _NS + "/scripts", "dispatch", script_list_cursor),
    ("GET", _NSS, "dispatch", ns_script_get),
    ("PUT", _NSS, "dispatch", script_put),
    ("DELETE", _NSS, "dispatch", script_delete),
    ("GET", _NSS + "/content", "dispatch", script_content_get),
    ("PUT", _NSS + "/content", "dispatch", script_content_put),
    ("GET", _NSS + "/settings", "dispatch", settings_get),
    ("PATCH", _NSS + "/settings", "dispatch", settings_patch),
    ("GET", _NSS + "/bindings", "dispatch", bindings_get),
    ("GET", _NSS + "/secrets", "dispatch", secrets_list),
    ("PUT", _NSS + "/secrets", "dispatch", secrets_put),
    ("GET", _NSS + "/secrets/{secret}", "dispatch", secret_get),
    ("DELETE", _NSS + "/secrets/{secret}", "dispatch", secret_delete),
    ("GET", _A + "/workers/scripts", "workers_scripts", script_list),
    ("GET", _WS, "workers_scripts", account_script_get),
    ("PUT", _WS, "workers_scripts", script_put),
    ("DELETE", _WS, "workers_scripts", script_delete),
    ("GET", _WS + "/content/v2", "workers_scripts", script_content_get),
    ("PUT", _WS + "/content", "workers_scripts", script_content_put),
    ("GET", _WS + "/settings", "workers_scripts", settings_get),
    ("PATCH", _WS + "/settings", "workers_scripts", settings_patch),
    ("GET", _WS + "/script-settings", "workers_scripts", script_settings_get),
    ("PATCH", _WS + "/script-settings", "workers_scripts", script_settings_patch),
    ("GET", _WS + "/schedules", "workers_scripts", schedules_get),
    ("GET", _WS + "/secrets", "workers_scripts", secrets_list),
    ("PUT", _WS + "/secrets", "workers_scripts", secrets_put),
    ("GET", _WS + "/secrets/{secret}", "workers_scripts", secret_get),
    ("DELETE", _WS + "/secrets/{secret}", "workers_scripts", secret_delete),
    ("GET", _WS + "/tails", "workers_scripts", tail_list),
    ("POST", _WS + "/tails", "workers_scripts", tail_create),
    ("DELETE", _WS + "/tails/{tail_id}", "workers_scripts", tail_delete),
    ("POST", _A + "/analytics_engine/sql", "analytics", analytics_sql),
    ("POST", _OT + "/query", "observability", telemetry_query),
    ("POST", _OT + "/keys", "observability", telemetry_keys),
    ("POST", _OT + "/values", "observability", telemetry_values),
    ("POST", _OT + "/live-tail", "observability", telemetry_live_tail),
    ("POST", _OT + "/live-tail/heartbeat", "observability", telemetry_heartbeat),
    *version_routes(_WS),
    ("GET", _KV, "kv", kv_list),
    ("POST", _KV, "kv", kv_create),
    ("GET", _KV + "/{kv_id}", "kv", kv_get),
    ("PUT", _KV + "/{kv_id}", "kv", kv_put),
    ("DELETE", _KV + "/{kv_id}", "kv", kv_delete),
    ("GET", "/zones", "zones", zones_list),
    ("GET", _Z, "zones", zone_get),
    ("GET", _Z + "/workers/routes", "routes", routes_list),
    ("POST", _Z + "/workers/routes", "routes", route_create),
    ("GET", _Z + "/workers/routes/{route_id}", "routes", route_get),
    ("PUT", _Z + "/workers/routes/{route_id}", "routes", route_put),
    ("DELETE", _Z + "/workers/routes/{route_id}", "routes", route_delete),
]


def _compile(template: str) -> re.Pattern[str]:
    pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template))
    return re.compile(f"^{pattern}/?$")


ROUTES = [ApiRoute(m, t, f, h, _compile(t)) for m, t, f, h in _TABLE]


def match_route(method: str, path: str) -> tuple[ApiRoute | None, dict[str, str], bool]:
    """Find the endpoint for ``method path``: (route, params, path_known)."""
    known = False
    for route in ROUTES:
        found = route.regex.match(path)
        if found is None:
            continue
        known = True
        if route.method == method:
            return route, found.groupdict(), True
    return None, {}, known


# ---------------------------------------------------------------------------------- serving
def _bearer(headers: dict[str, str]) -> str | None:
    auth = headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip() or None
    return None


def _redact(headers: dict[str, str]) -> dict[str, str]:
    out = dict(headers)
    for key in ("authorization", "x-auth-key"):
        if key in out:
            out[key] = "Bearer <redacted>" if key == "authorization" else "<redacted>"
    return out


def _make_record(
    method: str, path: str, request: Request, headers: dict[str, str], body: bytes
) -> RequestRecord:
    ctype = headers.get("content-type")
    parts: list[Part] | None = None
    parsed_json: Any = None
    if ctype and ctype.lower().startswith("multipart/"):
        try:
            parts = parse_multipart(body, ctype)
        except MultipartError:
            parts = None
    elif body and ctype and "json" in ctype.lower():
        try:
            parsed_json = json.loads(body)
        except ValueError:
            parsed_json = None
    return RequestRecord(
        seq=0,
        time=time.time(),
        method=method,
        path=path,
        query=list(request.query_params.multi_items()),
        headers=_redact(headers),
        body=body,
        content_type=ctype,
        parts=parts,
        json=parsed_json,
    )


def _authorize(
    state: EmulatorState, route: ApiRoute, params: dict[str, str], token: Token | None
) -> None:
    if route.handler in (verify_user_token, verify_account_token):
        if "account_id" in params:
            state._account(params["account_id"])
        return
    if token is None or token.status != "active":
        raise errors.auth_error()
    if not token.allows(route.family):
        raise errors.forbidden()
    if "account_id" in params:
        account = state._account(params["account_id"])
        if not token.covers_account(account.id):
            raise errors.unauthorized_account()
        if route.family == "dispatch" and not account.wfp:
            raise errors.wfp_not_enabled()
    if "zone_id" in params:
        zone = state._zone(params["zone_id"])
        if not token.covers_account(zone.account_id):
            raise errors.unauthorized_account()


async def _serve_api(state: EmulatorState, request: Request) -> Response:
    method = request.method.upper()
    path = "/" + request.path_params.get("path", "")
    body = await request.body()
    headers = {k.lower(): v for k, v in request.headers.items()}
    route, params, known = match_route(method, path)
    record = _make_record(method, path, request, headers, body)
    record.route = route.key if route else None
    if route is not None:
        CALLED.add(route.key)
    state._record(record)
    delay = state.latency_s
    if delay:
        await asyncio.sleep(delay)
    raw_token = _bearer(headers)
    response: Response
    fault = state._take_fault(path, raw_token or "anonymous")
    switched = state.faults.take(method, path) if fault is None else None
    if switched is not None:
        record.fault = switched
        if switched not in APPLIED_KINDS:
            fault = Fault(switched, 0, None) if switched in CONNECTION_KINDS else None
            if fault is None:
                kind, status = _normalize_kind(switched)
                fault = Fault(kind, status, None)
    if fault is not None and fault.kind == "reset":
        return await _reset(request)
    if fault is not None and fault.kind == "hang":
        record.fault = fault.kind
        await _hang(request)
        response = Response(b"", status_code=499)
    elif fault is not None:
        record.fault = fault.kind
        response = fault_response(fault)
    else:
        try:
            with state.lock:
                if route is None:
                    raise errors.method_not_allowed(method) if known else errors.no_route(path)
                token = state._tokens.get(raw_token) if raw_token else None
                _authorize(state, route, params, token)
                ctx = Ctx(state, method, path, params, record.query, headers, body, token, record)
                checked = state.type_checks
                if checked:
                    _check_request(state, route, params, record)
                response = route.handler(ctx)
                if checked:
                    response = _check_answer(state, route, record, response)
        except ApiError as exc:
            response = error_response(exc)
        except Exception:
            state.server_errors.append(traceback.format_exc())
            response = error_response(errors.internal_error())
    response.headers.setdefault("cf-ray", _ray())
    for name, value in state._headers_for_answer().items():
        response.headers.setdefault(name, value)
    if switched in APPLIED_KINDS:
        # Carried out above; now the answer fails (faults.py).
        if switched == "applied_hang":
            await _hang(request)
            response = Response(b"", status_code=499)
        elif switched == "applied_cut":
            response = CutResponse(response)
        else:
            response = error_response(ApiError(500, 10013, "Injected fault after the change"))
    state._finish(record, response.status_code)
    return response


async def _hang(request: Request) -> None:
    while not await request.is_disconnected():
        await asyncio.sleep(0.02)


def _connection(receive: Any) -> Any:
    """The server's transport for this request (uvicorn's), or None in-process."""
    return getattr(getattr(receive, "__self__", None), "transport", None)


async def _reset(request: Request) -> Response:
    """Close the connection with no answer (in-process, where there is none: an exception)."""
    transport = _connection(request.receive)
    if transport is None:
        raise ConnectionResetError("emulator fault: reset")
    transport.abort()
    await asyncio.sleep(0.01)  # let the server see the connection go, so it answers nothing
    return Response(b"", status_code=499)


class CutResponse(Response):
    """An answer whose headers promise the whole body, cut a third of the way into it."""

    def __init__(self, whole: Response) -> None:
        super().__init__(bytes(whole.body), status_code=whole.status_code)
        self.raw_headers = whole.raw_headers

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        body = bytes(self.body)
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        part = body[: len(body) // 3]
        await send({"type": "http.response.body", "body": part, "more_body": True})
        transport = _connection(receive)
        if transport is None:
            raise ConnectionResetError("emulator fault: answer cut")
        transport.abort()
        await asyncio.sleep(0.01)


def _check_request(
    state: EmulatorState, route: ApiRoute, params: dict[str, str], record: RequestRecord
) -> None:
    """Refuse a request that does not fit the SDK's parameter type (contract.py)."""
    contract = CONTRACTS.get(route.key)
    if contract is None:
        problem = "neither an SDK type nor a written reason (add it to contract.CONTRACTS)"
        state.type_violations.append(f"{route.key}: {problem}")
        raise errors.internal_error()
    problems = request_violations(contract, params, record)
    if problems:
        state.type_violations.append(
            f"request {record.method} {record.path}: " + "; ".join(problems)
        )
        raise refusal(problems)


def _check_answer(
    state: EmulatorState, route: ApiRoute, record: RequestRecord, response: Response
) -> Response:
    """A 500 instead of an answer that does not fit the SDK's model (contract.py)."""
    contract = CONTRACTS[route.key]
    if contract.shape in ("raw", "none") or response.status_code >= 400:
        return response
    try:
        envelope = json.loads(bytes(response.body))
    except ValueError:
        problems = ["the answer is not JSON"]
    else:
        problems = answer_violations(contract, envelope.get("result"))
    if not problems:
        return response
    state.type_violations.append(f"answer to {record.method} {record.path}: " + "; ".join(problems))
    return error_response(
        ApiError(500, 10002, "emulator answer does not fit the SDK model: " + problems[0])
    )


def _record_to_json(r: RequestRecord) -> dict[str, Any]:
    parts = None
    if r.parts is not None:
        parts = []
        for p in r.parts:
            try:
                text: str | None = p.data.decode("utf-8")
            except UnicodeDecodeError:
                text = None
            parts.append(
                {
                    "name": p.name,
                    "filename": p.filename,
                    "content_type": p.content_type,
                    "size": len(p.data),
                    "text": text,
                }
            )
    return {
        "seq": r.seq,
        "time": r.time,
        "method": r.method,
        "path": r.path,
        "query": r.query,
        "route": r.route,
        "status": r.status,
        "fault": r.fault,
        "content_type": r.content_type,
        "version_override": version_override(r.headers),
        "json": r.json,
        "parts": parts,
    }


def _snapshot(state: EmulatorState) -> dict[str, Any]:
    with state.lock:
        return {
            "accounts": [
                {
                    **a.to_api(),
                    "wfp": a.wfp,
                    "namespaces": {
                        ns.name: sorted(ns.scripts) for ns in state._namespaces[a.id].values()
                    },
                    "scripts": sorted(state._scripts[a.id]),
                    "kv": [k.to_api() for k in state._kv[a.id].values()],
                }
                for a in state._accounts.values()
            ],
            "zones": [
                {
                    "id": z.id,
                    "name": z.name,
                    "account_id": z.account_id,
                    "routes": [r.to_api() for r in state._routes[z.id].values()],
                }
                for z in state._zones.values()
            ],
        }


async def _serve_control(state: EmulatorState, request: Request) -> Response:
    action = request.path_params.get("action", "").strip("/")
    method = request.method.upper()
    data: dict[str, Any] = {}
    if method == "POST":
        raw = await request.body()
        if raw:
            try:
                loaded = json.loads(raw)
            except ValueError:
                return JSONResponse({"error": "body must be JSON"}, status_code=400)
            if not isinstance(loaded, dict):
                return JSONResponse({"error": "body must be a JSON object"}, status_code=400)
            data = loaded
    try:
        if method == "GET" and action == "health":
            return JSONResponse({"ok": True})
        if method == "GET" and action == "type_violations":
            return JSONResponse(state.type_violations)
        if method == "GET" and action == "counters":
            return JSONResponse(state.counters())
        if method == "GET" and action == "requests":
            return JSONResponse([_record_to_json(r) for r in state.requests()])
        if method == "GET" and action == "snapshot":
            return JSONResponse(_snapshot(state))
        if method == "POST" and action == "fail_next":
            state.fail_next(**data)
        elif method == "POST" and action == "fail_ratio":
            state.fail_ratio(**data)
        elif method == "POST" and action == "latency":
            state.latency(float(data.get("ms", 0)))
        elif method == "POST" and action == "rate_limit":
            state.rate_limit(data.get("requests"), float(data.get("window_s", 300.0)))
        elif method == "POST" and action == "ratelimit_headers":
            state.ratelimit_headers(data.get("ratelimit"), data.get("policy"))
        elif method == "POST" and action == "faults":
            state.faults.add(**data)
        elif method == "POST" and action == "clear_faults":
            state.clear_faults()
        elif method == "POST" and action == "clear_requests":
            state.clear_requests()
        elif method == "POST" and action == "type_checks":
            state.type_checks = bool(data.get("enabled", True))
        else:
            return JSONResponse({"error": f"unknown control {method} {action}"}, status_code=404)
    except (TypeError, ValueError) as exc:
        return JSONResponse({"error": str(exc)}, status_code=400)
    return JSONResponse({"ok": True})


def create_app(state: EmulatorState) -> ASGIApp:
    """Build the emulator ASGI app over ``state`` (API at /client/v4, controls at /__emulator)."""

    async def api(request: Request) -> Response:
        return await _serve_api(state, request)

    async def api_root(request: Request) -> Response:
        return error_response(errors.no_route(request.url.path))

    async def control(request: Request) -> Response:
        return await _serve_control(state, request)

    async def tail_socket(websocket: WebSocket) -> None:
        await serve_tail_socket(state, websocket)

    async def live_tail_socket(websocket: WebSocket) -> None:
        await serve_live_tail_socket(state, websocket)

    return Starlette(
        routes=[
            StarletteRoute(API_PREFIX + "/{path:path}", api, methods=_METHODS),
            StarletteRoute(API_PREFIX, api_root, methods=_METHODS),
            StarletteRoute(CONTROL_PREFIX + "/{action:path}", control, methods=["GET", "POST"]),
            WebSocketRoute("/tail/{tail_id}", tail_socket),
            WebSocketRoute("/observability/live-tail/{tail_id}", live_tail_socket),
        ]
    )
