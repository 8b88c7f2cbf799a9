"""The Cloudflare v4 error answers the emulator gives, in one place.

Each entry says where the code/message comes from. "seen" means it was found in public
material quoting real API answers (the source is named, and listed in README.md); "chosen"
means no real answer was found and the emulator picks a plausible one (callers should match on
the code, which is stable here, and treat the exact wording as unverified).
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["ApiError"]


@dataclass
class ApiError(Exception):
    """An error answer: HTTP status plus the v4 ``errors`` list."""

    status: int
    code: int
    message: str
    more: list[tuple[int, str]] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.status} [{self.code}] {self.message}"

    def errors(self) -> list[dict[str, object]]:
        """The ``errors`` array of the envelope."""
        return [{"code": c, "message": m} for c, m in [(self.code, self.message), *self.more]]


# --- authentication / routing (seen) -------------------------------------------------------
def auth_error() -> ApiError:
    """Missing, unknown or inactive token (seen: 10000 "Authentication error" in
    cloudflare/workers-sdk issues #2863, #4089; status 401 chosen)."""
    return ApiError(401, 10000, "Authentication error")


def forbidden() -> ApiError:
    """Token valid but lacks the permission group for this path family (seen: 10000, treated
    as a missing-permission answer by wrangler's triggers/publish-routes.ts; status 403
    chosen)."""
    return ApiError(403, 10000, "Authentication error")


def invalid_token() -> ApiError:
    """Token verify endpoints with a token they do not accept (1000 "Invalid API Token":
    chosen from the token-verify wording; no public answer quoted)."""
    return ApiError(401, 1000, "Invalid API Token")


def unauthorized_account() -> ApiError:
    """Token valid but not for this account or zone (seen: 9109 "Unauthorized to access
    requested resource" in ChrispyBacon-dev/DockFlare#177, octodns/octodns-cloudflare#60 and
    wrangler's whoami.ts; status 403 chosen)."""
    return ApiError(403, 9109, "Unauthorized to access requested resource")


def no_route(path: str) -> ApiError:
    """Unknown object identifier or URI (7003 + 7000: the v4 API's generic routing answer,
    chosen from its widely quoted wording; no source in README.md's list)."""
    return ApiError(
        404,
        7003,
        f"Could not route to {path}, perhaps your object identifier is invalid?",
        [(7000, "No route for that URI")],
    )


def method_not_allowed(method: str) -> ApiError:
    """Known path, unsupported method (chosen: code, wording and status)."""
    return ApiError(
        405, 10000, f"{method} method not allowed for the api_token authentication scheme"
    )


def rate_limited(retry_after: str) -> ApiError:
    """Over the request budget (429 and Retry-After: seen, Cloudflare docs
    fundamentals/api/reference/limits; code 971 and wording chosen)."""
    return ApiError(
        429,
        971,
        "Please wait and consider throttling your request speed",
        headers={"Retry-After": retry_after},
    )


def internal_error() -> ApiError:
    """An emulator bug surfaced as the API's generic failure (chosen: 10002 and wording)."""
    return ApiError(500, 10002, "An unknown error has occurred")


def bad_request(message: str, code: int = 10026) -> ApiError:
    """Unparseable or invalid request, query or body (chosen: the code each caller passes,
    10001/10019/10021/10026, and the wording)."""
    return ApiError(400, code, message)


# --- Workers for Platforms ------------------------------------------------------------------
def wfp_not_enabled() -> ApiError:
    """Account lacks the Workers for Platforms entitlement (chosen: code 10121, wording and
    status; no public answer found)."""
    return ApiError(
        403,
        10121,
        "Workers for Platforms is not enabled on this account: "
        "dispatch namespaces are unavailable.",
    )


def namespace_not_found() -> ApiError:
    """Unknown dispatch namespace (seen only in third-party material: a generated client maps
    DispatchNamespaceNotFound to 100119; wording from a log excerpt; see README.md)."""
    return ApiError(404, 100119, "The specified dispatch namespace does not exist on this account.")


def binding_namespace_not_found(binding: str, namespace: str) -> ApiError:
    """An upload whose dispatch_namespace binding names a missing namespace (100119 as above;
    the added 10021 detail is chosen)."""
    return ApiError(
        400,
        100119,
        "The specified dispatch namespace does not exist on this account.",
        [(10021, f"binding '{binding}' references dispatch namespace '{namespace}'")],
    )


def namespace_exists(name: str) -> ApiError:
    """Duplicate namespace name: 100120 (seen only in third-party material, a generated client
    mapping DispatchNamespaceAlreadyExists to 100120 and test mocks answering "Invalid dispatch
    namespace name. Ensure it does not already exist"; nothing at all supports 100118, which
    this emulator answered before). Wording chosen."""
    return ApiError(
        400, 100120, f"A dispatch namespace named '{name}' already exists on this account."
    )


def namespace_rename() -> ApiError:
    """Attempt to change a namespace's name (chosen: code, wording and the refusal itself;
    wrangler's dispatch-namespace rename suggests the real API allows it, see README.md)."""
    return ApiError(400, 10021, "A dispatch namespace cannot be renamed.")


# --- Workers scripts ------------------------------------------------------------------------
def script_not_found() -> ApiError:
    """Unknown Worker (seen: 10007, workers-sdk deploy-helpers worker-not-found-error.ts and
    Cloudflare docs workers/observability/errors; wording and status 404 chosen)."""
    return ApiError(404, 10007, "workers.api.error.script_not_found")


def script_invalid(message: str) -> ApiError:
    """Upload validation failure (seen: 10021, docs workers/observability/errors and wrangler's
    friendly-validator-errors.ts; messages chosen)."""
    return ApiError(400, 10021, message)


def durable_object_class_not_migrated(class_name: str) -> ApiError:
    """A Durable Object binding to a class of this Worker that no migration created (seen:
    10061 and this wording in cloudflare/workers-sdk issues #10034 and #10246)."""
    return ApiError(
        400,
        10061,
        f"Cannot create binding for class '{class_name}' because it is not currently configured "
        "to implement Durable Objects. Ensure a --new-class migration has been applied to it.",
    )


def durable_object_namespace_mismatch(binding: str, namespace_id: str, owner: str) -> ApiError:
    """A Durable Object binding whose ``namespace_id`` is not the namespace of the class it
    names (chosen: the refusal itself, code 10021 and wording. What the real API does with
    another Worker's namespace_id is not documented; see README.md)."""
    return ApiError(
        400,
        10021,
        f"Durable Object binding '{binding}' names namespace_id '{namespace_id}', which is not "
        f"the namespace of its class in Worker '{owner}'.",
    )


def kv_binding_not_found(binding: str, namespace_id: str) -> ApiError:
    """kv_namespace binding with an unknown id (chosen: code 10041 and wording)."""
    return ApiError(
        400, 10041, f"KV namespace '{namespace_id}' is not valid. [binding '{binding}']"
    )


def service_binding_not_found(binding: str, service: str) -> ApiError:
    """service binding whose target Worker does not exist (chosen: code 10144 and wording)."""
    return ApiError(
        400,
        10144,
        f"Could not resolve service binding '{binding}'. Target script '{service}' not found.",
    )


def secret_not_found(name: str) -> ApiError:
    """Unknown secret (chosen: code 10056 and wording)."""
    return ApiError(404, 10056, f"workers.api.error.secret_not_found: {name}")


# --- KV -------------------------------------------------------------------------------------
def kv_title_exists() -> ApiError:
    """Duplicate KV title (seen: 10014 and this wording in cloudflare/workers-sdk#13242 and
    wrangler's kv/index.ts; status 400 chosen)."""
    return ApiError(400, 10014, "a namespace with this account ID and title already exists")


def kv_not_found() -> ApiError:
    """Unknown KV namespace id (chosen: 10013 and wording)."""
    return ApiError(404, 10013, "namespace not found")


# --- routes ---------------------------------------------------------------------------------
def route_duplicate() -> ApiError:
    """Pattern already routed in the zone (chosen: 409 10020 workers.api.error.duplicate_route).

    Note: the SDK retries 409 like 429/5xx (twice by default), as it would against the real API.
    """
    return ApiError(409, 10020, "workers.api.error.duplicate_route")


def route_script_missing() -> ApiError:
    """Route naming a Worker that does not exist (chosen: 400 10019)."""
    return ApiError(400, 10019, "workers.api.error.invalid_route_script_missing")


def route_pattern_zone(pattern: str) -> ApiError:
    """Pattern whose host is outside the zone (chosen: 400 10022 and wording)."""
    return ApiError(400, 10022, f"Route pattern must include zone name: {pattern}")


def route_not_found() -> ApiError:
    """Unknown route id (chosen: code 10009 and wording)."""
    return ApiError(404, 10009, "workers.api.error.route_not_found")


def tail_not_found() -> ApiError:
    """Deleting a tail that does not exist (chosen: no real answer found)."""
    return ApiError(404, 10057, "Tail not found.")
