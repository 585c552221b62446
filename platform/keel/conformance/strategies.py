"""Hypothesis strategies for wire messages, read from their annotations.

The strategies follow the same annotations the codec does (`keel.wire`), so
a round-trip test written against them covers a message type the moment it
is registered, with no per-class code:

    @given(msg=messages())
    def test_my_messages_round_trip(msg):
        assert wire.decode(wire.encode(msg)) == msg

Drawn values stay inside what the wire carries: integers CBOR holds without a
bignum tag, UTF-8 text, floats but never NaN (NaN != NaN, so no message with
one equals its own round trip), small collections. `AnyMessage` fields and
nested attrs classes recurse at most `depth` levels, which keeps recursive
types finite. A drawn instance that the class's validators refuse is drawn
again; for a type whose valid values are rare, pass a strategy for it in
`overrides` (keyed by annotation: a class, or a form such as `int | None`).

hypothesis is a test dependency: import this module from tests only.
"""

from __future__ import annotations

import enum
import types
import typing
from collections.abc import Mapping
from typing import Any

import attrs
from hypothesis import strategies as st

from keel import wire

__all__ = ["for_annotation", "for_class", "messages"]

DEPTH = 2  # AnyMessage / nested-class levels; deep enough to nest a message in a message in a message
MAX_ITEMS = 3  # per tuple, set or map: enough to exercise ordering, few enough to stay quick
MAX_BYTES = 24  # per str or bytes value

Overrides = Mapping[Any, st.SearchStrategy[Any]]


def messages(*, depth: int = DEPTH, overrides: Overrides | None = None) -> st.SearchStrategy[Any]:
    """Any message registered by the time the strategy is first drawn from."""
    return st.deferred(lambda: _Builder(overrides).any_message(depth))


def for_class(cls: type, *, depth: int = DEPTH, overrides: Overrides | None = None) -> st.SearchStrategy[Any]:
    """Instances of one message (or nested attrs) class, every field drawn from its annotation."""
    return _Builder(overrides).instance(cls, depth)


def for_annotation(annotation: Any, *, depth: int = DEPTH, overrides: Overrides | None = None) -> st.SearchStrategy[Any]:
    """Values of one field annotation, as the codec understands it.

    Raises:
        TypeError: the annotation is not one the codec can carry.
    """
    return _Builder(overrides).value(annotation, depth)


class _Refused:
    """Stands for an instance the class's validators would not build."""


_REFUSED = _Refused()


class _Builder:
    """Builds strategies for one call, sharing them per (class, depth)."""

    def __init__(self, overrides: Overrides | None) -> None:
        self._overrides = dict(overrides or {})
        self._made: dict[tuple[type, int], st.SearchStrategy[Any]] = {}

    def any_message(self, depth: int) -> st.SearchStrategy[Any]:
        return st.one_of([self.instance(cls, depth) for cls in wire.registered()])

    def instance(self, cls: type, depth: int) -> st.SearchStrategy[Any]:
        if cls in self._overrides:
            return self._overrides[cls]
        key = (cls, depth)
        if key not in self._made:
            # Deferred, so a class that contains itself refers to its own
            # strategy rather than building it again without end.
            self._made[key] = st.deferred(lambda: self._fields(cls, depth))
        return self._made[key]

    def _fields(self, cls: type, depth: int) -> st.SearchStrategy[Any]:
        hints = typing.get_type_hints(cls)
        fields = {f.name: self.value(hints[f.name], depth) for f in attrs.fields(cls) if f.init}

        def build(values: dict[str, Any]) -> Any:
            try:
                return cls(**values)
            except Exception:  # noqa: BLE001 - what the decoder turns into WireError, a draw turns into a retry
                return _REFUSED

        return st.fixed_dictionaries(fields).map(build).filter(lambda v: v is not _REFUSED)

    def value(self, annotation: Any, depth: int) -> st.SearchStrategy[Any]:
        if annotation in self._overrides:
            return self._overrides[annotation]
        scalar = _scalar(annotation)
        if scalar is not None:
            return scalar
        if annotation is wire.AnyMessage or (isinstance(annotation, type) and attrs.has(annotation)):
            if depth <= 0:
                return st.nothing()  # an Optional or a collection around it still draws None or empty
            return self.any_message(depth - 1) if annotation is wire.AnyMessage else self.instance(annotation, depth - 1)
        if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
            return st.sampled_from(annotation)
        origin, args = typing.get_origin(annotation), typing.get_args(annotation)
        if origin in (typing.Union, types.UnionType):
            return st.one_of([self.value(arm, depth) for arm in args])
        if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
            item = self.value(args[0], depth)
            return st.just(()) if item.is_empty else st.lists(item, max_size=MAX_ITEMS).map(tuple)
        if origin is tuple:
            return st.tuples(*(self.value(arm, depth) for arm in args))
        if origin is frozenset:
            item = self.value(args[0], depth)
            return st.just(frozenset()) if item.is_empty else st.frozensets(item, max_size=MAX_ITEMS)
        if origin is dict:
            key, item = self.value(args[0], depth), self.value(args[1], depth)
            if key.is_empty or item.is_empty:
                return st.just({})
            return st.dictionaries(key, item, max_size=MAX_ITEMS)
        raise TypeError(f"no strategy for annotation {annotation!r}: the wire codec does not carry it")


def _scalar(annotation: Any) -> st.SearchStrategy[Any] | None:
    if annotation is bool:
        return st.booleans()
    if annotation is int:
        return st.integers(min_value=wire.CBOR_INTS.start, max_value=wire.CBOR_INTS.stop - 1)
    if annotation is float:
        return st.floats(allow_nan=False)
    if annotation is str:
        return st.text(max_size=MAX_BYTES)  # hypothesis leaves out surrogates, which UTF-8 cannot hold
    if annotation is bytes:
        return st.binary(max_size=MAX_BYTES)
    if annotation is None or annotation is type(None):
        return st.none()
    return None
