"""Bounds on reading ``namespaces.yaml``: what a hostile or broken file cannot make us do.

A config is a small file written by a person. These limits keep a pasted log, a YAML alias
bomb, a deeply nested structure or a 5,000-digit number from costing minutes and gigabytes (or
a traceback): each is refused, located, before anything walks the data.

- the file: at most :data:`MAX_CONFIG_BYTES`;
- nesting: at most :data:`MAX_DEPTH` levels of mappings and lists;
- aliases: allowed, but the document they expand to has at most :data:`MAX_EXPANDED_NODES`
  nodes (a billion-laughs file expands past it in a few lines);
- integers: at most :data:`MAX_INT_DIGITS` digits (no setting needs more).

URL fields are bounded by the models (scheme, host, port range).
"""

from __future__ import annotations

import re
from typing import Any

import yaml

# The file's size bound lives apart, so ``--help`` can read a config within it without PyYAML.
from code24ctl.config.size_bound import MAX_CONFIG_BYTES as MAX_CONFIG_BYTES
from code24ctl.config.size_bound import MIB as MIB
from code24ctl.config.size_bound import BoundsExceeded as BoundsExceeded
from code24ctl.config.size_bound import read_bounded as read_bounded

MAX_DEPTH = 32
MAX_EXPANDED_NODES = 100_000
MAX_INT_DIGITS = 20


_INT_DIGITS_RE = re.compile(r"[0-9a-fA-F]")


def check_nesting(text: str) -> None:
    """Refuse nesting deeper than :data:`MAX_DEPTH` from the parser's events alone.

    PyYAML's pure-Python scanner looks ahead through a run of ``[`` in quadratic time, so a
    deeply nested file is caught here first, by libyaml when it is installed. A syntax error
    is left for the full parse to report.
    """
    loader_class: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    depth = 0
    try:
        for event in yaml.parse(text, Loader=loader_class):
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_DEPTH:
                    mark = event.start_mark
                    raise BoundsExceeded(
                        f"nested more than {MAX_DEPTH} levels deep",
                        mark.line + 1 if mark else None,
                    )
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
    except yaml.MarkedYAMLError as exc:
        # libyaml stops at 1,000 levels with its own error, before any event is this deep.
        if "nesting depth" in str(exc.problem or ""):
            mark = exc.context_mark or exc.problem_mark
            raise BoundsExceeded(
                f"nested more than {MAX_DEPTH} levels deep", mark.line + 1 if mark else None
            ) from None
    except yaml.YAMLError:
        return


#: libyaml's parser where PyYAML has it (its wheels do): the pure-Python one takes ~10 ms to
#: read namespaces.yaml, which every command pays before it does anything (~1 ms in C).
_SafeLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class BoundedLoader(_SafeLoader):  # type: ignore[misc]
    """PyYAML's safe loader with an integer-size cap.

    Nesting is capped by :func:`check_nesting`, which runs over the same text first: libyaml
    composes in C, past any hook a loader could add while composing.
    """

    def construct_bounded_int(self, node: yaml.ScalarNode) -> int:
        """An integer of at most :data:`MAX_INT_DIGITS` digits."""
        digits = len(_INT_DIGITS_RE.findall(str(node.value)))
        if digits > MAX_INT_DIGITS:
            raise BoundsExceeded(
                f"a number with {digits:,} digits; at most {MAX_INT_DIGITS} are allowed",
                node.start_mark.line + 1,
            )
        value: int = self.construct_yaml_int(node)
        return value


class _WordingLoader(yaml.SafeLoader):
    """The pure-Python loader :func:`worded_error` reads a refused file with: it composes
    with a depth cap of its own, because libyaml may refuse a file before the nesting it holds
    (``%YAML 1.3``, an unknown directive, a BOM inside it) while this parser reads on, and
    :func:`check_nesting` stopped at that first error."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        """Compose one node, refusing nesting deeper than :data:`MAX_DEPTH`."""
        if self.check_event(yaml.SequenceStartEvent, yaml.MappingStartEvent):
            self._depth += 1
            if self._depth > MAX_DEPTH:
                raise BoundsExceeded(f"nested more than {MAX_DEPTH} levels deep")
            try:
                return super().compose_node(parent, index)
            finally:
                self._depth -= 1
        return super().compose_node(parent, index)


def worded_error(exc: yaml.YAMLError, text: str) -> yaml.YAMLError:
    """The error the pure-Python parser gives for ``text``, which libyaml refused with ``exc``.

    libyaml words a syntax error by what it missed ("did not find expected ',' or '}'"); the
    pure-Python parser also says what it found there ("expected ',' or '}', but got ':'"). Only
    a file that failed is read twice. The two parsers do not refuse the same files: the Python
    one's error is taken only where it is on the line libyaml refused, and a file it would read
    deeper than :data:`MAX_DEPTH` keeps libyaml's error.
    """
    if _SafeLoader is yaml.SafeLoader or not isinstance(exc, yaml.MarkedYAMLError):
        return exc
    loader = _WordingLoader(text)
    try:
        loader.get_single_node()
    except yaml.MarkedYAMLError as worded:
        here, there = exc.problem_mark, worded.problem_mark
        same_line = here is not None and there is not None and here.line == there.line
        return worded if same_line else exc
    except (yaml.YAMLError, BoundsExceeded, RecursionError):
        return exc
    finally:
        loader.dispose()
    return exc


BoundedLoader.add_constructor("tag:yaml.org,2002:int", BoundedLoader.construct_bounded_int)


def check_expansion(node: yaml.Node) -> None:
    """Refuse a document whose aliases expand it past :data:`MAX_EXPANDED_NODES` nodes or
    :data:`MAX_DEPTH` levels, or make it contain itself.

    Counted over the node graph with a memo per node, so the count itself costs the size of the
    file, not of the expansion (an alias always names a node defined before it).
    """
    done: dict[int, tuple[int, int]] = {}  # id(node) -> (values, depth) of its expansion
    busy: set[int] = set()

    def refuse(message: str, at: yaml.Node) -> BoundsExceeded:
        return BoundsExceeded(message, at.start_mark.line + 1 if at.start_mark else None)

    def measure(current: yaml.Node, level: int) -> tuple[int, int]:
        key = id(current)
        known = done.get(key)
        if known is None:
            if key in busy:
                raise refuse("an alias refers to the value it is inside of", current)
            if level > MAX_DEPTH:
                raise refuse(f"aliases nest values more than {MAX_DEPTH} levels deep", current)
            busy.add(key)
            children: list[yaml.Node] = []
            if isinstance(current, yaml.MappingNode):
                children = [part for pair in current.value for part in pair]
            elif isinstance(current, yaml.SequenceNode):
                children = list(current.value)
            count, depth = 1, 0
            for child in children:
                child_count, child_depth = measure(child, level + 1)
                count += child_count
                depth = max(depth, child_depth)
                if count > MAX_EXPANDED_NODES:
                    raise refuse(
                        f"aliases expand this document past {MAX_EXPANDED_NODES:,} values "
                        "(a YAML alias bomb?); write the values out or use fewer aliases",
                        current,
                    )
            busy.discard(key)
            known = done[key] = (count, depth + (1 if children else 0))
        if level + known[1] > MAX_DEPTH:
            raise refuse(f"aliases nest values more than {MAX_DEPTH} levels deep", current)
        return known

    measure(node, 0)
