"""How a deployed Worker differs from the code an upload would send, difference by difference.

:func:`compare` is what ``bind``, ``deploy``, ``plan`` and ``doctor`` decide ``unchanged`` from;
each :class:`Difference` names exactly what differs, down to an entry of a binding's data.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from code24ctl.cloudflare.modules import SECRET_BINDING_TYPES, Module, fingerprint

if TYPE_CHECKING:
    from code24ctl.cloudflare.worker_code import DeployedWorker, WorkerCode

DifferenceField = Literal[
    "modules",
    "main_module",
    "compatibility_date",
    "compatibility_flags",
    "bindings",
    "settings",
    "tags",
]
DifferenceAction = Literal["create", "update", "delete"]


@dataclass(frozen=True)
class Difference:
    """One way a deployed Worker differs from the code that would be uploaded.

    ``field`` is the part of the upload (``bind`` groups by it); ``path`` names exactly what
    differs (``compatibility_date``, ``binding ROUTE_TABLE``, or inside a binding's data
    ``ROUTE_TABLE.workers.designer-worker.fallback.message``); ``old`` is what is deployed and
    ``new`` what would be uploaded (None for what does not exist on that side). ``action`` is
    ``create`` (only in the upload), ``update`` or ``delete`` (only deployed). Rendering, as
    ``~ path: old -> new``, is the caller's business; ``detail`` is a plain sentence.
    """

    field: DifferenceField
    path: str
    old: Any = None
    new: Any = None
    action: DifferenceAction = "update"

    @property
    def detail(self) -> str:
        """The difference as a sentence (for logs and check details)."""
        if self.action == "create":
            return f"{self.path} missing"
        if self.action == "delete":
            return f"{self.path} not expected"
        return f"{self.path} {_short_value(self.old)} (expected {_short_value(self.new)})"

    def __str__(self) -> str:
        return self.detail


def _short_value(value: Any, limit: int = 80) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _module_differences(held: Sequence[Module], wanted: Sequence[Module]) -> list[Difference]:
    """One difference per module added, removed or changed, shown by its sha256 prefix and
    content type (the bytes are too long to show)."""
    old = {m.name: _module_label(m) for m in held}
    new = {m.name: _module_label(m) for m in wanted}
    found = []
    for name in sorted(set(old) | set(new)):
        if old.get(name) != new.get(name):
            action: DifferenceAction = (
                "create" if name not in old else "delete" if name not in new else "update"
            )
            found.append(
                Difference("modules", f"module {name}", old.get(name), new.get(name), action)
            )
    return found


def _module_label(module: Module) -> str:
    return f"sha256:{module.sha256[:12]} {module.content_type}"


def compare(wanted: WorkerCode, held: WorkerCode | DeployedWorker) -> list[Difference]:
    """How ``held`` (read back from the API) differs from ``wanted`` ([] = nothing to upload).

    Modules, compatibility date and flags must be equal (flags in any order); an answer that
    does not name its entry module is not called different for it. Bindings are compared by
    name, secrets never (an upload keeps them): see :func:`same_binding` for what the API may
    add to a binding without it counting as a change. A binding that differs is broken down to
    the keys (and, inside ``json`` data, the entries) that differ.
    """
    found: list[Difference] = []
    if fingerprint(wanted.modules) != fingerprint(held.modules):
        found += _module_differences(held.modules, wanted.modules)
    if held.main_module is not None and held.main_module != wanted.main_module:
        found.append(Difference("main_module", "main_module", held.main_module, wanted.main_module))
    if (wanted.compatibility_date or None) != (held.compatibility_date or None):
        found.append(
            Difference(
                "compatibility_date",
                "compatibility_date",
                held.compatibility_date,
                wanted.compatibility_date,
            )
        )
    if sorted(wanted.compatibility_flags) != sorted(held.compatibility_flags):
        found.append(
            Difference(
                "compatibility_flags",
                "compatibility_flags",
                list(held.compatibility_flags),
                list(wanted.compatibility_flags),
            )
        )
    have = {
        str(b.get("name")): b for b in held.bindings if b.get("type") not in SECRET_BINDING_TYPES
    }
    want = {str(b.get("name")): b for b in wanted.bindings}
    for name, binding in want.items():
        if name not in have:
            found.append(
                Difference("bindings", f"binding {name}", None, dict(binding), action="create")
            )
        elif not same_binding(binding, have[name]):
            found += _binding_differences(name, binding, have[name])
    found += [
        Difference("bindings", f"binding {name}", dict(have[name]), None, action="delete")
        for name in have
        if name not in want
    ]
    held_settings = getattr(held, "settings", {})
    for key, value in wanted.settings.items():
        if not _carries(value, held_settings, key):
            held_value = held_settings.get(key) if isinstance(held_settings, Mapping) else None
            found.append(Difference("settings", key, held_value, value))
    if wanted.tags and sorted(wanted.tags) != sorted(getattr(held, "tags", ())):
        found.append(Difference("tags", f"tags (expected {_listed(sorted(wanted.tags))})"))
    return found


def _binding_differences(
    name: str, wanted: Mapping[str, Any], held: Mapping[str, Any]
) -> list[Difference]:
    found: list[Difference] = []
    for key, value in wanted.items():
        if key in EXACT_BINDING_FIELDS:
            if _canonical(value) != _canonical(held.get(key)):
                # The user's data: show the entries that differ, not the whole document.
                prefix = name if key == "json" else f"{name}.{key}"
                found += data_differences(prefix, held.get(key), value)
        elif not _carries(value, held, key):
            found.append(Difference("bindings", f"{name}.{key}", held.get(key), value))
    return found or [Difference("bindings", f"binding {name}", dict(held), dict(wanted))]


def data_differences(path: str, old: Any, new: Any) -> list[Difference]:
    """The leaves where two JSON documents differ, each as a ``bindings`` difference.

    Objects are compared key by key; a list of objects that each have a ``prefix`` (the route
    table's routes) or ``name`` is compared item by item under that key, so one changed route
    is one difference, not the whole list.
    """
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        return _entries_differences(path, old, new, lambda key: f"{path}.{key}")
    key = _list_key(old)
    if key is not None and key == _list_key(new):
        olds = {str(item[key]): item for item in old}
        news = {str(item[key]): item for item in new}
        return _entries_differences(path, olds, news, lambda k: f"{path}[{k}]")
    if _canonical(old) == _canonical(new):
        return []
    return [Difference("bindings", path, old, new)]


def _entries_differences(
    path: str, old: Mapping[str, Any], new: Mapping[str, Any], name: Callable[[str], str]
) -> list[Difference]:
    found: list[Difference] = []
    for key in list(old) + [k for k in new if k not in old]:
        inner = name(str(key))
        if key not in new:
            found.append(Difference("bindings", inner, old[key], None, action="delete"))
        elif key not in old:
            found.append(Difference("bindings", inner, None, new[key], action="create"))
        else:
            found += data_differences(inner, old[key], new[key])
    return found


def _list_key(value: Any) -> str | None:
    if not isinstance(value, list) or not value:
        return None
    for key in ("prefix", "name"):
        if all(isinstance(item, Mapping) and key in item for item in value):
            return key
    return None


#: Binding fields that hold the user's data: equal as a whole, nothing added or left out.
EXACT_BINDING_FIELDS = frozenset({"json", "text"})


def same_binding(wanted: Mapping[str, Any], held: Mapping[str, Any]) -> bool:
    """Whether a binding read back from the API is the one we would upload.

    The API may add fields (ids, defaults) and leave out empty ones (an outbound Worker with no
    ``params``): objects may hold extra keys and an empty value we send may be absent. Lists
    match item by item. The user's data (a ``json`` value, a ``text``) must be equal exactly,
    so a route removed from the route table is a change.
    """
    return all(
        _canonical(value) == _canonical(held.get(key))
        if key in EXACT_BINDING_FIELDS
        else _carries(value, held, key)
        for key, value in wanted.items()
    )


def _carries(value: Any, held: Mapping[str, Any], key: str) -> bool:
    if key not in held:
        return value is None or value == [] or value == {}
    return _matches(value, held[key])


def _matches(wanted: Any, held: Any) -> bool:
    if isinstance(wanted, Mapping):
        return isinstance(held, Mapping) and all(
            _carries(value, held, key) for key, value in wanted.items()
        )
    if isinstance(wanted, list | tuple):
        return (
            isinstance(held, list | tuple)
            and len(wanted) == len(held)
            and all(_matches(w, h) for w, h in zip(wanted, held, strict=True))
        )
    return _canonical(wanted) == _canonical(held)


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def _listed(values: Sequence[str]) -> str:
    return f"[{', '.join(values)}]"
