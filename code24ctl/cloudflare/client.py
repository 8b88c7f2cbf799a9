"""The one place that builds Cloudflare API clients and turns API failures into our errors.

Every API call goes through the official ``cloudflare`` SDK over a paced transport
(:mod:`code24ctl.cloudflare.pacing`). Tests inject the real transport (one wired to the local
emulator) or point ``CLOUDFLARE_BASE_URL`` at it. The SDK is imported lazily: it is the heaviest
import we have and ``code24ctl --help`` must stay fast.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from code24ctl.cloudflare.pacing import (
    API_TIMEOUT_ENV_VAR,
    SYSTEM_CLOCK,
    DeadlineExceeded,
    FailedAnswer,
    InvalidAnswer,
    PacedTransport,
    Pacer,
    RetryPolicy,
    gave_up,
    paced_http_client,
)
from code24ctl.constants import ACCOUNT_ENV_VAR, BASE_URL_ENV_VAR, TOKEN_ENV_VAR
from code24ctl.dispatch.classify import looks_like_html
from code24ctl.errors import CloudflareAPIError, NetworkError, UsageError

if TYPE_CHECKING:
    import ssl

    import httpx
    from cloudflare import Cloudflare

    from code24ctl.cloudflare.pacing import Clock


# API error codes the tool acts on (not only reports).
NAMESPACE_NOT_FOUND = 100119  # "The specified dispatch namespace does not exist on this account."
SCRIPT_NOT_FOUND = 10007  # "workers.api.error.script_not_found"
KV_TITLE_EXISTS = 10014  # a KV namespace with this title already exists

# What to do about the API errors a user of this tool actually meets.
API_ERROR_HINTS: dict[int, str] = {
    100119: "the dispatch namespace does not exist: run `code24ctl namespace create` first",
    10000: "the token was refused: check CLOUDFLARE_API_TOKEN and that it has "
    "Workers Scripts:Edit on this account (and for deploy: Workers KV Storage:Edit, "
    "Zone:Read and Zone Workers Routes:Edit)",
    10121: "this account lacks Workers for Platforms: enable it in the dashboard "
    "(Workers & Pages > Workers for Platforms) or use an account that has it",
    10007: "no such Worker: run `code24ctl bind` (namespace) or `code24ctl deploy` (dispatcher)",
    10021: "Cloudflare rejected the uploaded Worker code; see the message above",
    10016: "the Worker name is not valid: lowercase letters, digits, '-' and '_'",
    10020: "the route pattern is taken; rerun with --force to take it over",
    971: "rate limited (1,200 requests per 5 minutes): wait a few minutes and retry "
    "(for bind, a lower --concurrency)",
    7003: "the account id is wrong or the token cannot see it: check CLOUDFLARE_ACCOUNT_ID",
    # 9109 is "Unauthorized to access requested resource": in public reports it is most often
    # a token without the permission the call needs, less often the wrong account.
    9109: "the token lacks a permission this call needs (Workers Scripts:Edit, Workers KV "
    "Storage:Edit, Zone:Read, Zone Workers Routes:Edit), or CLOUDFLARE_ACCOUNT_ID is not an "
    "account the token can reach",
}


@dataclass(frozen=True)
class Credentials:
    """The API token and where the API lives. ``repr`` never shows the token."""

    token: str = field(repr=False)
    base_url: str | None = None


def credentials_from_env() -> Credentials:
    """Read ``CLOUDFLARE_API_TOKEN`` (required) and ``CLOUDFLARE_BASE_URL`` (optional)."""
    token = os.environ.get(TOKEN_ENV_VAR, "").strip()
    if not token:
        raise UsageError(
            f"{TOKEN_ENV_VAR} is not set",
            hint=f"create an API token in the Cloudflare dashboard and export {TOKEN_ENV_VAR}",
        )
    if not token.isascii() or not token.isprintable() or any(c.isspace() for c in token):
        # An HTTP header cannot carry it; usually a stray character from a paste.
        raise UsageError(
            f"{TOKEN_ENV_VAR} contains a space, a control or a non-ASCII character",
            hint="copy the token again from the Cloudflare dashboard",
        )
    return Credentials(token=token, base_url=os.environ.get(BASE_URL_ENV_VAR) or None)


def make_client(
    credentials: Credentials,
    *,
    pacer: Pacer | None = None,
    policy: RetryPolicy | None = None,
    transport: httpx.BaseTransport | None = None,
    clock: Clock | None = None,
) -> Cloudflare:
    """Build the SDK client; every request goes through a :class:`PacedTransport`.

    ``pacer`` (default: a fresh one), ``policy`` (default: bulk retries), the real
    ``transport`` (default: httpx's own; tests pass an in-process one) and the ``clock`` are
    injected. The SDK's own retries are off: the transport does them. Commands build a
    :class:`~code24ctl.cloudflare.session.CloudflareSession` instead, which keeps the pacer.
    """
    import httpx
    from cloudflare import Cloudflare

    clock = clock or SYSTEM_CLOCK
    paced = PacedTransport(
        transport or httpx.HTTPTransport(verify=tls_context()),
        pacer or Pacer(clock=clock),
        policy or RetryPolicy(),
        clock=clock,
    )
    return Cloudflare(
        api_token=credentials.token,
        base_url=credentials.base_url,
        http_client=paced_http_client(paced),
        max_retries=0,
    )


@functools.cache
def tls_context() -> ssl.SSLContext:
    """The process's one TLS context for the API (httpx's default: certifi's CA bundle).

    Building one loads the CA bundle, about 20 ms of CPU; without this every client built
    (doctor and apply build several per run, the test suite hundreds) paid it again.
    """
    import httpx

    return httpx.create_ssl_context()


def is_not_found(exc: CloudflareAPIError, code: int) -> bool:
    """Whether ``exc`` says the thing is missing: the API's ``code`` for it, or a bare 404.

    A 404 that carries another API code is another error and is not swallowed.
    """
    return exc.code == code or (exc.status == 404 and exc.code is None)


@contextmanager
def api_call(action: str) -> Iterator[None]:
    """Translate SDK and network failures inside the block into our error tree.

    ``action`` names what we were doing ("create namespace code24-workers-staging"), so the
    message reads as a sentence about the user's intent rather than an HTTP status.
    """
    import cloudflare
    import httpx

    try:
        yield
    except cloudflare.APIStatusError as exc:
        raise api_error_from(
            action, exc.status_code, exc.body, exc.response, after=gave_up(exc.response)
        ) from None
    except cloudflare.APITimeoutError:
        raise NetworkError(
            f"{action}: the Cloudflare API did not answer in time",
            hint=_network_hint(),
            unknown_outcome=True,
        ) from None
    except cloudflare.APIConnectionError as exc:
        cause = exc.__cause__ or exc
        if isinstance(cause, InvalidAnswer):
            raise invalid_answer_error(action, cause) from None
        if isinstance(cause, FailedAnswer):
            raise api_error_from(action, cause.status, cause.body) from None
        if isinstance(cause, DeadlineExceeded):
            raise NetworkError(
                f"{action}: {cause}",
                hint=f"{_network_hint()}; "
                f"{API_TIMEOUT_ENV_VAR}=SECONDS changes how long one call may take",
                unknown_outcome=cause.waiting_for != "waiting to connect",
            ) from None
        never_sent = isinstance(cause, (httpx.ConnectError, httpx.ConnectTimeout))
        lost = "" if never_sent else "; the answer was lost"
        raise NetworkError(
            f"{action}: cannot reach the Cloudflare API ({type(cause).__name__}{lost})",
            hint=_network_hint(),
            unknown_outcome=not never_sent,
        ) from None
    except (cloudflare.APIError, ValueError) as exc:
        # An answer that is not what the API documents (a body that fails the SDK's schema,
        # JSON that does not parse): still an API failure, never a traceback.
        raise CloudflareAPIError(
            f"{action}: the Cloudflare API answered something unexpected ({type(exc).__name__})",
            hint="retry later; if it persists, check CLOUDFLARE_BASE_URL and the API status",
        ) from None


def _network_hint() -> str:
    """Where to look when the API cannot be reached: the network, or the address we were told
    to use (named with its value when CLOUDFLARE_BASE_URL is set)."""
    base_url = os.environ.get(BASE_URL_ENV_VAR)
    if base_url:
        return f"check {BASE_URL_ENV_VAR} ({base_url!r}), then your network"
    return "check your network"


def invalid_answer_error(action: str, answer: InvalidAnswer) -> CloudflareAPIError:
    """The error for a 2xx that is not a v4 API answer: names the status, type and host."""
    return CloudflareAPIError(
        f"{action}: {answer}",
        status=answer.status,
        hint="a proxy, a captive portal or a wrong CLOUDFLARE_BASE_URL answers like this: "
        "check the network and that CLOUDFLARE_BASE_URL (if set) ends in /client/v4",
    )


def api_error_from(
    action: str, status: int, body: object, response: Any = None, *, after: str = ""
) -> CloudflareAPIError:
    """Build a :class:`CloudflareAPIError` from an API answer, never echoing an HTML page.

    ``after`` ends the message (``gave up after 12 attempts over 300 s``). A 5xx leaves the
    outcome unknown: the API may have carried the request out.
    """
    unknown = status >= 500
    tail = f"; {after}" if after else ""
    errors = _envelope_errors(body)
    if errors:
        code, text = errors[0]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        message = f"{action}: Cloudflare API error {code}: {text}{more} (HTTP {status}){tail}"
        hint = API_ERROR_HINTS.get(code)
        if code in ACCOUNT_OR_TOKEN_CODES or status in (401, 403):
            hint = _account_or_token_hint(response, hint)
        return CloudflareAPIError(
            message, code=code, status=status, hint=hint, unknown_outcome=unknown
        )
    content_type = ""
    if response is not None:
        content_type = str(response.headers.get("content-type", ""))
    html = "html" in content_type.lower() or (
        isinstance(body, str) and looks_like_html(body.encode())
    )
    kind = "an HTML page" if html else "no JSON"
    hint = (
        API_ERROR_HINTS[971]
        if status == 429
        else "Cloudflare had a problem: retry later; if it persists, see www.cloudflarestatus.com"
    )
    if status in (401, 403):
        hint = _account_or_token_hint(response, API_ERROR_HINTS[10000])
    elif os.environ.get(BASE_URL_ENV_VAR):
        # Not the API's envelope: with the API's address set by hand, that address is the
        # likeliest cause, not Cloudflare.
        hint = (
            f"{BASE_URL_ENV_VAR} is {os.environ[BASE_URL_ENV_VAR]!r}: the API answers in its "
            f"JSON envelope, so check that it is the API's address and ends in /client/v4 "
            f"(or unset {BASE_URL_ENV_VAR} to use Cloudflare's)"
        )
    return CloudflareAPIError(
        f"{action}: the Cloudflare API answered HTTP {status} with {kind}{tail}",
        status=status,
        hint=hint,
        unknown_outcome=unknown,
    )


#: API codes that mean the token or the account is wrong, and the answer cannot tell which.
ACCOUNT_OR_TOKEN_CODES = frozenset({10000, 7003, 9109})


def _account_or_token_hint(response: Any, hint: str | None) -> str | None:
    """``hint``, preceded by the account the request named and where that id came from: a
    wrong account id is refused like a wrong token (``whoami`` tells them apart)."""
    url = getattr(getattr(response, "request", None), "url", None)
    path = str(getattr(url, "path", "") or "")
    parts = path.split("/")
    if "accounts" not in parts or parts.index("accounts") + 1 >= len(parts):
        return hint
    account = parts[parts.index("accounts") + 1]
    source = (
        ACCOUNT_ENV_VAR
        if os.environ.get(ACCOUNT_ENV_VAR, "").strip() == account
        else "account_id in the config"
    )
    named = (
        f"account {account} (from {source}) may not be yours: `code24ctl whoami` tells a "
        "wrong account from a wrong token"
    )
    return f"{hint}; or {named}" if hint else named


def _envelope_errors(body: object) -> list[tuple[int, str]]:
    if not isinstance(body, dict):
        return []
    found: list[tuple[int, str]] = []
    for item in body.get("errors") or []:
        if isinstance(item, dict) and isinstance(item.get("code"), int):
            found.append((item["code"], str(item.get("message", "")).strip()))
    return found
