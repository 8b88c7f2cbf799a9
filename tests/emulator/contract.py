"""Every request and answer of the emulator held to the ``cloudflare`` SDK's own types.

The SDK's types are generated from Cloudflare's OpenAPI spec: the nearest machine-readable word
from Cloudflare on this machine. A fact written once in code24ctl and once in the emulator, by the
same hands, proves nothing; so each endpoint the emulator answers names, in :data:`CONTRACTS`,
the SDK's parameter type for its request and the SDK model its answer is parsed with, or else a
written reason (with a public source) why there is none. Nothing is copied: the types are
imported from the installed SDK.

- **Requests.** The request is put together the way the SDK's ``*Params`` TypedDict describes
  it (path parameters, query parameters and JSON body fields side by side; a multipart body's
  JSON parts, such as ``metadata`` or ``settings``, under their part names) and validated by a
  pydantic ``TypeAdapter`` over that TypedDict, changed in three ways: keys the type does not
  define are refused (pydantic ignores them on a TypedDict by default), ``Iterable`` fields are
  checked at once (pydantic checks them lazily), and the SDK's ``PropertyInfo`` aliases
  (``workers/message``) are the names looked up. A refusal is answered 400 (see
  :func:`refusal`) and recorded.
- **Answers.** ``result`` is checked against the SDK model (or a list of it, or ``{items: [..]}``
  for the SDK's ``V4PagePagination``) with extra fields forbidden, except the few in a
  contract's ``extras``, each of which the README names with the public source that shows the
  real API sends it. A violation replaces the answer with a 500 and is recorded; the ``cf_state``
  fixture fails the test that caused it.

``EmulatorState.type_checks`` turns both off (``POST /__emulator/type_checks``).
"""

from __future__ import annotations

import functools
import json
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Union

import typing_extensions

from .errors import ApiError

if TYPE_CHECKING:
    from .models import RequestRecord

__all__ = [
    "CALLED",
    "CONTRACTS",
    "Contract",
    "answer_violations",
    "refusal",
    "request_violations",
    "type_name",
]

#: Every endpoint (route key) any emulator in this process answered: the suite's record of
#: what code24ctl and the tests called (the fixtures plugin keeps it in pytest's cache).
CALLED: set[str] = set()

Shape = Literal["one", "list", "items", "raw", "none"]
PATH_ONLY = "the SDK method takes the path only"


@dataclass(frozen=True)
class Contract:
    """What the SDK says one endpoint takes and answers.

    ``request``: the SDK ``*Params`` TypedDict (None: the SDK method takes only the path, or
    there is no SDK method; ``request_reason`` says which). ``response`` with ``shape``:
    ``one`` (``result`` is one model), ``list`` (a list of it), ``items`` (``{"items": [...]}``),
    ``raw`` (not JSON: no model, ``response_reason`` says why), ``none`` (the SDK types the
    result as ``object``: anything). ``extras``: answer fields sent beyond the SDK model.
    """

    request: Any
    response: Any
    shape: Shape = "one"
    request_reason: str = ""
    response_reason: str = ""
    extras: tuple[str, ...] = ()


# --------------------------------------------------------------------------------- requests
# The emulator's path parameter names, and the SDK's for the same thing.
_PATH_NAMES = {
    "account_id": "account_id",
    "namespace": "dispatch_namespace",
    "script": "script_name",
    "zone_id": "zone_id",
    "kv_id": "namespace_id",
    "route_id": "route_id",
    "secret": "secret_name",
    "tail_id": "id",
    "version_id": "version_id",
}


def _unflatten(query: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """Query pairs as the SDK built them: ``account.id=x`` is ``{"account": {"id": "x"}}``;
    a key given twice is a list."""
    out: dict[str, Any] = {}
    for key, value in query:
        parts = key.split(".")
        node = out
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        last = parts[-1]
        if last in node:
            existing = node[last]
            node[last] = [*existing, value] if isinstance(existing, list) else [existing, value]
        else:
            node[last] = value
    return out


def _fields(params_type: Any) -> set[str]:
    names: set[str] = set()
    for member in _union_members(params_type):
        try:
            names |= set(typing.get_type_hints(member))
        except TypeError:
            continue
    return names


def _union_members(tp: Any) -> tuple[Any, ...]:
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _union_members(typing.get_args(tp)[0])
    if origin is Union or origin is types.UnionType:
        return typing.get_args(tp)
    return (tp,)


def assemble_request(
    contract: Contract, params: Mapping[str, str], record: RequestRecord
) -> dict[str, Any] | str:
    """The request as the SDK's ``*Params`` type describes it (or a message when the body is
    not what the endpoint takes at all)."""
    declared = _fields(contract.request)
    doc: dict[str, Any] = {}
    for ours, value in params.items():
        sdk = _PATH_NAMES.get(ours, ours)
        if sdk in declared:
            doc[sdk] = value
    doc.update(_unflatten(record.query))
    if record.parts is not None:
        for part in record.parts:
            if part.filename is not None:
                continue  # a module or file: what the SDK sends as ``files``
            try:
                doc[part.name] = json.loads(part.data)
            except ValueError:
                return f"the {part.name!r} part is not JSON"
    elif record.body:
        try:
            body = json.loads(record.body)
        except ValueError:
            return "the body is not JSON"
        if not isinstance(body, dict):
            return "the body is not a JSON object"
        doc.update(body)
    return doc


def request_violations(
    contract: Contract, params: Mapping[str, str], record: RequestRecord
) -> list[str]:
    """Why this request does not fit the SDK's parameter type (empty: it fits)."""
    if contract.request is None:
        if contract.request_reason == PATH_ONLY and (record.query or record.body):
            return ["this endpoint takes no query and no body (the SDK method sends neither)"]
        return []
    from pydantic import ValidationError

    doc = assemble_request(contract, params, record)
    if isinstance(doc, str):
        return [doc]
    try:
        _strict_validator(contract.request).validate_python(doc)
    except ValidationError as exc:
        return [_describe(error) for error in exc.errors()]
    return []


def _describe(error: Mapping[str, Any]) -> str:
    where = ".".join(str(p) for p in error.get("loc", ())) or "(body)"
    if error.get("type") == "extra_forbidden":
        return f"{where}: not a field of the SDK type"
    return f"{where}: {error.get('msg')}"


@functools.cache
def _strict_validator(params_type: Any) -> Any:
    """A pydantic validator for the SDK type with unknown keys refused (see module doc)."""
    from pydantic import TypeAdapter
    from pydantic_core import SchemaValidator

    schema = TypeAdapter(_without_files(params_type)).core_schema
    return SchemaValidator(_strict_schema(schema))  # type: ignore[arg-type]


def _without_files(params_type: Any) -> Any:
    """The SDK type less its ``files`` field (the uploaded modules, binary parts that the
    request checks leave to the handler): pydantic cannot build a schema for ``IO[bytes]``."""
    if typing.get_origin(params_type) is not None:
        return params_type
    hints = typing.get_type_hints(params_type, include_extras=True)
    if "files" not in hints:
        return params_type
    # include_extras keeps each field's Required[...] marker.
    fields = {name: hint for name, hint in hints.items() if name != "files"}
    return typing_extensions.TypedDict(  # type: ignore[operator]
        params_type.__name__, fields, total=False
    )


_REQUIRED_MARKERS = (typing_extensions.Required, typing_extensions.NotRequired)


def _property_aliases(cls: Any) -> dict[str, str]:
    try:
        hints = typing.get_type_hints(cls, include_extras=True)
    except (TypeError, NameError):
        return {}
    aliases: dict[str, str] = {}
    for name, hint in hints.items():
        # ``Required[Annotated[str, PropertyInfo(alias=...)]]``: the alias sits inside.
        while typing.get_origin(hint) in _REQUIRED_MARKERS:
            (hint,) = typing.get_args(hint)
        if typing.get_origin(hint) is typing.Annotated:
            for meta in typing.get_args(hint)[1:]:
                alias = getattr(meta, "alias", None)
                if isinstance(alias, str):
                    aliases[name] = alias
    return aliases


def _strict_schema(schema: Any) -> Any:
    if isinstance(schema, list):
        return [_strict_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: _strict_schema(value) for key, value in schema.items()}
    kind = out.get("type")
    if kind == "typed-dict":
        out["extra_behavior"] = "forbid"
        for name, alias in _property_aliases(out.get("cls")).items():
            field = out["fields"].get(name)
            if field is not None:
                field["validation_alias"] = alias
    elif kind == "generator":
        out["type"] = "list"
    elif kind == "union":
        tagged = _tagged(out["choices"])
        if tagged is not None:
            return tagged
    return out


def _tagged(choices: list[Any]) -> dict[str, Any] | None:
    """A union of TypedDicts told apart by a literal ``type`` field, as a tagged union (one
    member's errors, not every member's)."""
    by_tag: dict[str, Any] = {}
    for choice in choices:
        schema = choice[0] if isinstance(choice, tuple) else choice
        if not isinstance(schema, dict) or schema.get("type") != "typed-dict":
            return None
        field = schema["fields"].get("type")
        inner = field.get("schema") if field else None
        if not inner or inner.get("type") != "literal" or len(inner["expected"]) != 1:
            return None
        by_tag[str(inner["expected"][0])] = schema
    return {"type": "tagged-union", "choices": by_tag, "discriminator": "type"}


def refusal(problems: Sequence[str]) -> ApiError:
    """The answer to a request the SDK's type does not allow.

    400 with code 10026, whose documented meaning is "Could not parse request body" (docs
    workers/observability/errors, "Errors on Worker upload"). Whether the real API refuses
    unknown fields at all, rather than ignoring them, no public source says (unsettled; see
    README.md); the detail after the colon is the emulator's.
    """
    return ApiError(400, 10026, "Could not parse request body: " + "; ".join(problems[:5]))


# --------------------------------------------------------------------------------- answers
def answer_violations(contract: Contract, result: Any) -> list[str]:
    """Why ``result`` is not what the SDK model describes (empty: it is)."""
    model, shape = contract.response, contract.shape
    if shape in ("raw", "none") or model is None:
        return []
    allowed = frozenset(contract.extras)
    if shape == "list":
        if not isinstance(result, list):
            return [f"result: a list of {type_name(model)} expected"]
        return [p for i, item in enumerate(result) for p in _check(model, item, f"[{i}]", allowed)]
    if shape == "items":
        if not isinstance(result, dict) or set(result) - {"items"}:
            return ['result: {"items": [...]} expected']
        items = result.get("items") or []
        return [
            p for i, item in enumerate(items) for p in _check(model, item, f"items[{i}]", allowed)
        ]
    return _check(model, result, "result", allowed)


def _check(tp: Any, value: Any, path: str, extras: frozenset[str] = frozenset()) -> list[str]:
    """``value`` against the SDK annotation ``tp`` (models: fields by alias, no others)."""
    from pydantic import BaseModel

    origin = typing.get_origin(tp)
    if tp is Any or tp is object:
        return []
    if origin is typing.Annotated:
        return _check(typing.get_args(tp)[0], value, path, extras)
    if origin is Union or origin is types.UnionType:
        arms = typing.get_args(tp)
        if value is None and type(None) in arms:
            return []
        best: list[str] | None = None
        for arm in arms:
            if arm is type(None):
                continue
            found = _check(arm, value, path, extras)
            if not found:
                return []
            if best is None or len(found) < len(best):
                best = found
        return best or [f"{path}: null not allowed"]
    if origin is Literal:
        allowed = typing.get_args(tp)
        return [] if value in allowed else [f"{path}: {value!r} is not one of {allowed!r}"]
    if origin in (list, Sequence, typing.List):  # noqa: UP006
        if not isinstance(value, list):
            return [f"{path}: a list expected, got {type(value).__name__}"]
        (item,) = typing.get_args(tp) or (Any,)
        return [p for i, v in enumerate(value) for p in _check(item, v, f"{path}[{i}]")]
    if origin in (dict, Mapping, typing.Dict):  # noqa: UP006
        if not isinstance(value, dict):
            return [f"{path}: an object expected, got {type(value).__name__}"]
        args = typing.get_args(tp)
        item = args[1] if len(args) == 2 else Any
        return [p for k, v in value.items() for p in _check(item, v, f"{path}.{k}")]
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return _check_model(tp, value, path, extras)
    if tp is str:
        return [] if isinstance(value, str) else [f"{path}: a string expected, got {value!r}"]
    if tp is bool:
        return [] if isinstance(value, bool) else [f"{path}: a boolean expected, got {value!r}"]
    if tp in (int, float):
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return [] if ok else [f"{path}: a number expected, got {value!r}"]
    if tp is type(None):
        return [] if value is None else [f"{path}: null expected"]
    # A class the SDK generated without fields (``class ResourcesBindings: pass``): untyped.
    return []


def _check_model(model: Any, value: Any, path: str, extras: frozenset[str]) -> list[str]:
    if not isinstance(value, dict):
        return [f"{path}: an object ({model.__name__}) expected, got {type(value).__name__}"]
    problems: list[str] = []
    known: set[str] = set()
    for name, info in model.model_fields.items():
        key = info.alias or name
        known.add(key)
        if key in value:
            problems += _check(info.annotation, value[key], f"{path}.{key}")
        elif info.is_required():
            problems.append(f"{path}.{key}: required by {model.__name__}, missing")
    for key in value:
        if key not in known and key not in extras:
            problems.append(f"{path}.{key}: not a field of the SDK model {model.__name__}")
    return problems


def type_name(tp: Any) -> str:
    """``module.Name`` of an SDK type, from ``cloudflare.types.`` on, for the README table."""
    if tp is None:
        return ""
    members = _union_members(tp)
    if len(members) > 1:
        module = members[0].__module__
        for name, value in vars(__import__(module, fromlist=["_"])).items():
            if value is tp:
                return f"{module.removeprefix('cloudflare.types.')}.{name}"
    module = getattr(tp, "__module__", "")
    return f"{module.removeprefix('cloudflare.types.')}.{getattr(tp, '__name__', tp)}"


# --------------------------------------------------------------------------------- the table
def _contracts() -> dict[str, Contract]:
    from cloudflare.types import accounts, kv, user, zones
    from cloudflare.types import workers as w
    from cloudflare.types.workers import observability as wo
    from cloudflare.types.workers import scripts as ws
    from cloudflare.types.workers_for_platforms import dispatch as wd
    from cloudflare.types.workers_for_platforms.dispatch import namespaces as wn
    from cloudflare.types.workers_for_platforms.dispatch.namespaces import scripts as wns

    a = "/accounts/{account_id}"
    ns = a + "/workers/dispatch/namespaces/{namespace}"
    nss = ns + "/scripts/{script}"
    s = a + "/workers/scripts/{script}"
    kvp = a + "/storage/kv/namespaces"
    z = "/zones/{zone_id}"
    ot = a + "/workers/observability/telemetry"
    path_only = PATH_ONLY
    content = (
        "not JSON: multipart/form-data of the modules (or one script as text); the SDK reads "
        "it as bytes (BinaryAPIResponse / str)"
    )
    none = "the SDK types the result as object"
    no_sdk_ns_put = (
        "no SDK method updates a namespace; code24ctl never calls it (the emulator refuses a "
        "rename, see README)"
    )
    return {
        "GET /user/tokens/verify": Contract(
            None, user.TokenVerifyResponse, request_reason=path_only
        ),
        "GET /accounts": Contract(accounts.AccountListParams, accounts.Account, "list"),
        f"GET {a}": Contract(None, accounts.Account, request_reason=path_only),
        f"GET {a}/tokens/verify": Contract(
            None, accounts.TokenVerifyResponse, request_reason=path_only
        ),
        f"GET {a}/workers/dispatch/namespaces": Contract(
            None, wd.NamespaceListResponse, "list", request_reason=path_only
        ),
        f"POST {a}/workers/dispatch/namespaces": Contract(
            wd.NamespaceCreateParams, wd.NamespaceCreateResponse
        ),
        f"GET {ns}": Contract(None, wd.NamespaceGetResponse, request_reason=path_only),
        f"PUT {ns}": Contract(None, wd.NamespaceGetResponse, request_reason=no_sdk_ns_put),
        f"DELETE {ns}": Contract(None, None, "none", path_only, none),
        f"GET {ns}/scripts": Contract(
            None,
            None,
            "none",
            "no SDK method lists a namespace's scripts: code24ctl sends limit and cursor as "
            "the tags page documents (docs cloudflare-for-platforms/workers-for-platforms/"
            "configuration/tags)",
            "no SDK model: code24ctl reads the items as flat script objects or as namespace "
            "script answers, and result_info.cursor (README, Sources of truth)",
        ),
        f"GET {nss}": Contract(None, wn.Script, request_reason=path_only),
        f"PUT {nss}": Contract(wn.script_update_params.ScriptUpdateParams, wn.ScriptUpdateResponse),
        f"DELETE {nss}": Contract(
            wn.script_delete_params.ScriptDeleteParams, None, "none", response_reason=none
        ),
        f"GET {nss}/content": Contract(None, None, "raw", path_only, content),
        f"PUT {nss}/content": Contract(wns.content_update_params.ContentUpdateParams, w.Script),
        f"GET {nss}/settings": Contract(None, wns.SettingGetResponse, request_reason=path_only),
        f"PATCH {nss}/settings": Contract(wns.SettingEditParams, wns.SettingEditResponse),
        f"GET {nss}/bindings": Contract(
            None, wns.BindingGetResponse, "list", request_reason=path_only
        ),
        f"GET {nss}/secrets": Contract(
            None, wns.SecretListResponse, "list", request_reason=path_only
        ),
        f"PUT {nss}/secrets": Contract(wns.SecretUpdateParams, wns.SecretUpdateResponse),
        f"GET {nss}/secrets/{{secret}}": Contract(wns.SecretGetParams, wns.SecretGetResponse),
        f"DELETE {nss}/secrets/{{secret}}": Contract(
            wns.SecretDeleteParams, None, "none", response_reason=none
        ),
        f"GET {a}/workers/scripts": Contract(w.ScriptListParams, w.ScriptListResponse, "list"),
        f"GET {s}": Contract(None, None, "raw", path_only, content),
        f"PUT {s}": Contract(
            w.script_update_params.ScriptUpdateParams,
            w.ScriptUpdateResponse,
            extras=("deployment_id",),
        ),
        f"DELETE {s}": Contract(w.ScriptDeleteParams, None, "none", response_reason=none),
        f"GET {s}/content/v2": Contract(None, None, "raw", path_only, content),
        f"PUT {s}/content": Contract(ws.content_update_params.ContentUpdateParams, w.Script),
        f"GET {s}/settings": Contract(
            None, ws.ScriptAndVersionSettingGetResponse, request_reason=path_only
        ),
        f"PATCH {s}/settings": Contract(
            ws.ScriptAndVersionSettingEditParams, ws.ScriptAndVersionSettingEditResponse
        ),
        f"GET {s}/script-settings": Contract(None, w.ScriptSetting, request_reason=path_only),
        f"PATCH {s}/script-settings": Contract(ws.SettingEditParams, w.ScriptSetting),
        f"GET {s}/schedules": Contract(None, ws.ScheduleGetResponse, request_reason=path_only),
        f"GET {s}/secrets": Contract(None, ws.SecretListResponse, "list", request_reason=path_only),
        f"PUT {s}/secrets": Contract(ws.SecretUpdateParams, ws.SecretUpdateResponse),
        f"GET {s}/secrets/{{secret}}": Contract(ws.SecretGetParams, ws.SecretGetResponse),
        f"DELETE {s}/secrets/{{secret}}": Contract(
            ws.SecretDeleteParams, None, "none", response_reason=none
        ),
        f"GET {s}/tails": Contract(None, ws.TailGetResponse, request_reason=path_only),
        f"POST {s}/tails": Contract(
            None,
            ws.TailCreateResponse,
            request_reason="the SDK types the body as object (wrangler posts filters; the "
            "emulator ignores them)",
        ),
        f"DELETE {s}/tails/{{tail_id}}": Contract(
            None, None, "none", path_only, "TailDeleteResponse types the whole envelope"
        ),
        f"POST {a}/analytics_engine/sql": Contract(
            None,
            None,
            "raw",
            "no SDK type: the SQL text is the body (docs analytics/analytics-engine/sql-api)",
            "no SDK type: the answer is bare JSON {meta, data, rows}, not the v4 envelope "
            "(same page)",
        ),
        f"POST {s}/versions": Contract(
            ws.version_create_params.VersionCreateParams,
            ws.VersionCreateResponse,
            extras=("annotations",),
        ),
        f"GET {s}/versions": Contract(
            ws.VersionListParams, ws.VersionListResponse, "items", extras=("annotations",)
        ),
        f"GET {s}/versions/{{version_id}}": Contract(
            None, ws.VersionGetResponse, request_reason=path_only, extras=("annotations",)
        ),
        f"GET {s}/deployments": Contract(ws.DeploymentListParams, ws.DeploymentListResponse),
        f"POST {s}/deployments": Contract(ws.DeploymentCreateParams, ws.Deployment),
        f"POST {ot}/query": Contract(wo.TelemetryQueryParams, wo.TelemetryQueryResponse),
        f"POST {ot}/keys": Contract(wo.TelemetryKeysParams, wo.TelemetryKeysResponse, "list"),
        f"POST {ot}/values": Contract(wo.TelemetryValuesParams, wo.TelemetryValuesResponse, "list"),
        f"POST {ot}/live-tail": Contract(wo.TelemetryLiveTailParams, wo.TelemetryLiveTailResponse),
        f"POST {ot}/live-tail/heartbeat": Contract(
            wo.TelemetryLiveTailHeartbeatParams, None, "none", response_reason=none
        ),
        f"GET {kvp}": Contract(kv.NamespaceListParams, kv.Namespace, "list"),
        f"POST {kvp}": Contract(kv.NamespaceCreateParams, kv.Namespace),
        f"GET {kvp}/{{kv_id}}": Contract(None, kv.Namespace, request_reason=path_only),
        f"PUT {kvp}/{{kv_id}}": Contract(kv.NamespaceUpdateParams, kv.Namespace),
        f"DELETE {kvp}/{{kv_id}}": Contract(
            None, kv.NamespaceDeleteResponse, request_reason=path_only
        ),
        "GET /zones": Contract(zones.ZoneListParams, zones.Zone, "list"),
        f"GET {z}": Contract(None, zones.Zone, request_reason=path_only),
        f"GET {z}/workers/routes": Contract(None, w.RouteListResponse, "list", path_only),
        f"POST {z}/workers/routes": Contract(w.RouteCreateParams, w.RouteCreateResponse),
        f"GET {z}/workers/routes/{{route_id}}": Contract(
            None, w.RouteGetResponse, request_reason=path_only
        ),
        f"PUT {z}/workers/routes/{{route_id}}": Contract(
            w.RouteUpdateParams, w.RouteUpdateResponse
        ),
        f"DELETE {z}/workers/routes/{{route_id}}": Contract(
            None, w.RouteDeleteResponse, request_reason=path_only
        ),
    }


class _Contracts(Mapping[str, Contract]):
    """:func:`_contracts`, built on first use (the SDK's types are a heavy import)."""

    @functools.cached_property
    def _table(self) -> dict[str, Contract]:
        return _contracts()

    def __getitem__(self, key: str) -> Contract:
        return self._table[key]

    def __iter__(self) -> typing.Iterator[str]:
        return iter(self._table)

    def __len__(self) -> int:
        return len(self._table)


#: Route key (``"PUT /accounts/{account_id}/workers/scripts/{script}"``) -> its contract.
CONTRACTS: Mapping[str, Contract] = _Contracts()


# --------------------------------------------------------------------------------- README
TABLE_HEADER = (
    "| endpoint | request (SDK type) | answer (SDK model) | where there is no type: why, and "
    "the public source |",
    "|---|---|---|---|",
)


def markdown_table() -> list[str]:
    """The coverage table of tests/emulator/README.md, one row an endpoint (the README must
    hold exactly these lines; ``tests/contract/test_emulator_contract.py`` checks it)."""
    rows = list(TABLE_HEADER)
    for key, contract in CONTRACTS.items():
        request = f"`{type_name(contract.request)}`" if contract.request is not None else "-"
        if contract.response is not None:
            answer = f"`{type_name(contract.response)}`"
            if contract.shape == "list":
                answer = f"list of {answer}"
            elif contract.shape == "items":
                answer = f"`{{items: [..]}}` of {answer}"
            if contract.extras:
                answer += " + " + ", ".join(f"`{name}`" for name in contract.extras)
        else:
            answer = "-"
        reasons = [r for r in (contract.request_reason, contract.response_reason) if r]
        rows.append(f"| `{key}` | {request} | {answer} | {'; '.join(reasons)} |")
    rows.append(f"| `{TAIL_SOCKET}` | - | - | {TAIL_SOCKET_REASON} |")
    rows.append(f"| `{LIVE_TAIL_SOCKET}` | - | - | {LIVE_TAIL_SOCKET_REASON} |")
    return rows


#: The tail session's WebSocket: not an API endpoint, and no SDK type describes it.
TAIL_SOCKET = "WS <session url> (trace-v1)"
TAIL_SOCKET_REASON = (
    "no SDK type: the client sends `{debug}`, the socket sends wrangler's `TailEventMessage` "
    "(workers-sdk `packages/wrangler/src/tail/createTail.ts`)"
)

#: The Workers Logs live tail's WebSocket (``wsUrl``): no SDK type describes its messages.
LIVE_TAIL_SOCKET = "WS <wsUrl> (live tail)"
LIVE_TAIL_SOCKET_REASON = (
    "no SDK type and no public description of the messages (unsettled): the emulator sends "
    "one `EventsEvent` (the query answer's event shape) per message"
)


if __name__ == "__main__":
    print("\n".join(markdown_table()))
