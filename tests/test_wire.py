"""The wire format: round trips of every message, canonical bytes, frames, hostile input.

Round trips are drawn from each registered class's annotations
(`keel.conformance.strategies`), so a message type that a plugin registers is
covered without a line here. The message types below exist for these tests:
together they use every annotation the codec supports, including ones no
host message uses yet.
"""

from __future__ import annotations

import enum
import importlib
import math
import pkgutil
import typing

import attrs
import cbor2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import keel
from keel import plugins, wire
from keel.conformance.strategies import for_class, messages
from keel.data.tree_sync import Children, Entries, SyncBegin
from keel.errors import WireError
from keel.transport.envelope import ErrorReply, Request, Response
from keel.wire import AnyMessage, FrameDecoder

# Register every message there is: each host module (but the `__main__`s,
# which would run a program), every installed plugin, and the TCP plugin
# when it is importable without being installed.
for _module in pkgutil.walk_packages(keel.__path__, "keel."):
    if not _module.name.endswith(".__main__"):
        importlib.import_module(_module.name)
for _source in plugins.default_sources():
    _source.load()
try:
    importlib.import_module("keel_transport_tcp")
except ImportError:
    pass

QUICK = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FUZZ = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])


class Colour(enum.Enum):
    RED = "red"
    GREEN = "green"


class Rank(enum.Enum):
    LOW = 1
    HIGH = 2


@attrs.frozen
class Point:
    x: int
    y: int


@attrs.frozen
class Tree:
    label: str
    children: tuple[Tree, ...] = ()


@wire.message("keel-tests.every-shape")
@attrs.frozen
class EveryShape:
    count: int
    name: str
    blob: bytes
    flag: bool
    ratio: float
    maybe: int | None
    items: tuple[str, ...]
    pair: tuple[int, bytes]
    labels: frozenset[str]
    scores: dict[str, int]
    colour: Colour
    rank: Rank
    at: Point
    path: tuple[Point, ...]
    inner: AnyMessage | None
    later: int = 7
    note: str | None = None


@wire.message("keel-tests.tree")
@attrs.frozen
class Forest:
    trees: tuple[Tree, ...]
    by_rank: dict[Rank, frozenset[int]]


@wire.message("keel-tests.bounded")
@attrs.frozen
class Bounded:
    size: int = attrs.field(validator=attrs.validators.ge(0))


ROLES = {"leader": 0, "follower": 1}


def _known_role(instance: object, attribute: attrs.Attribute, value: str) -> None:
    ROLES[value]  # a validator written as a lookup raises KeyError, not ValueError


@wire.message("keel-tests.looked-up")
@attrs.frozen
class LookedUp:
    role: str = attrs.field(validator=_known_role)


def frame(payload: bytes, *, version: int = wire.PROTOCOL_VERSION) -> bytes:
    return wire.HEADER.pack(len(payload) + 1, version) + payload


def tagged(tag: str, fields: object) -> bytes:
    return cbor2.dumps([tag, fields])


def shape(**changes: object) -> EveryShape:
    base = EveryShape(
        count=1, name="n", blob=b"b", flag=True, ratio=0.5, maybe=None, items=("a",), pair=(1, b"x"),
        labels=frozenset({"a", "b"}), scores={"a": 1}, colour=Colour.RED, rank=Rank.LOW, at=Point(1, 2),
        path=(), inner=None,
    )
    return attrs.evolve(base, **changes)


def shape_fields(*, drop: tuple[str, ...] = (), **changes: object) -> dict[str, object]:
    """The plain field map of `shape()`, some fields replaced, some dropped."""
    fields = cbor2.loads(wire.encode(shape()))[1]
    fields.update(changes)
    for name in drop:
        del fields[name]
    return fields


def decodes_or_wire_error(data: bytes) -> None:
    """Feed `data` to both decoders; anything but WireError escaping fails the test."""
    try:
        wire.decode(data)
    except WireError:
        pass
    try:
        FrameDecoder().feed(data)
    except WireError:
        pass


# --- round trips ----------------------------------------------------------------


# A validator that accepts few values needs a strategy of its own.
NODES = st.integers(0, 7).flatmap(lambda level: st.tuples(st.just(level), st.integers(0, 16**level - 1)))
OVERRIDES = {
    LookedUp: st.sampled_from(sorted(ROLES)).map(LookedUp),
    # Anti-entropy messages carry fixed-size node values and digests.
    SyncBegin: st.builds(SyncBegin, st.binary(min_size=16, max_size=16), st.integers(0, 2**40)),
    Children: st.builds(lambda node, values, counts: Children(*node, values, counts), NODES,
                        st.binary(min_size=256, max_size=256), st.lists(st.integers(0, 2**40), min_size=16, max_size=16)),
    Entries: st.builds(lambda node, keys: Entries.of(*node, [(k, k.ljust(16, b"d")[:16]) for k in keys]), NODES,
                       st.lists(st.binary(max_size=24), max_size=3)),
}
BY_CLASS = {cls: for_class(cls, overrides=OVERRIDES) for cls in wire.registered()}
ANY_MESSAGE = messages(overrides=OVERRIDES)
# Strategies are built once, above: hypothesis caches what it learns about each.


def test_the_round_trip_covers_host_and_test_messages() -> None:
    tags = {wire.tag_of(cls) for cls in BY_CLASS}
    assert {"keel.request", "keel.response", "keel.error", "keel-tests.every-shape"} <= tags


@pytest.mark.parametrize("cls", BY_CLASS, ids=wire.tag_of)
@QUICK
@given(data=st.data())
def test_every_registered_message_round_trips_to_canonical_bytes(cls: type, data: st.DataObject) -> None:
    msg = data.draw(BY_CLASS[cls])
    payload = wire.encode(msg)
    decoded = wire.decode(payload)
    assert type(decoded) is cls
    assert decoded == msg
    # The decoded copy holds its maps and sets in wire order, `msg` in any order.
    assert wire.encode(decoded) == payload


@QUICK
@given(msgs=st.lists(ANY_MESSAGE, min_size=1, max_size=4), data=st.data())
def test_frames_decode_alike_whole_byte_by_byte_and_in_any_chunks(msgs: list[object], data: st.DataObject) -> None:
    stream = b"".join(wire.encode_frame(m) for m in msgs)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=8)))
    chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)])]

    for pieces in ([stream], [stream[i : i + 1] for i in range(len(stream))], chunks):
        decoder = FrameDecoder()
        out = [m for piece in pieces for m in decoder.feed(piece)]
        assert out == msgs
        assert decoder.pending == 0


def test_a_message_nested_in_a_message_keeps_its_type() -> None:
    msg = Request(id=3, body=Response(id=4, body=ErrorReply("wire", "bad")))
    assert wire.decode(wire.encode(msg)) == msg


def test_encoding_an_unregistered_message_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="Point is not a registered wire message"):
        wire.encode(Point(1, 2))
    with pytest.raises(TypeError, match="not a registered"):
        wire.encode(Request(id=1, body=Point(1, 2)))


def test_an_integer_beyond_cbor_is_refused_when_encoding() -> None:
    assert wire.decode(wire.encode(Bounded(2**64 - 1))) == Bounded(2**64 - 1)
    with pytest.raises(ValueError, match="cannot travel"):
        wire.encode(Bounded(2**64))


# --- canonical encoding ---------------------------------------------------------


@QUICK
@given(
    scores=st.dictionaries(st.text(max_size=4), st.integers(-(2**63), 2**63), max_size=6),
    labels=st.frozensets(st.text(max_size=4), max_size=6),
    data=st.data(),
)
def test_equal_messages_give_equal_bytes_whatever_the_order_of_maps_and_sets(
    scores: dict[str, int], labels: frozenset[str], data: st.DataObject
) -> None:
    shuffled_scores = dict(data.draw(st.permutations(list(scores.items()))))
    shuffled_labels = frozenset(data.draw(st.permutations(sorted(labels))))
    a, b = shape(scores=scores, labels=labels), shape(scores=shuffled_scores, labels=shuffled_labels)
    assert a == b
    assert wire.encode(a) == wire.encode(b)


def test_negative_zero_encodes_like_zero() -> None:
    assert shape(ratio=-0.0) == shape(ratio=0.0)
    assert wire.encode(shape(ratio=-0.0)) == wire.encode(shape(ratio=0.0))


def test_a_float_field_accepts_an_integer_and_keeps_nan() -> None:
    assert wire.decode(tagged("keel-tests.every-shape", shape_fields(ratio=3))).ratio == 3.0
    assert math.isnan(wire.decode(wire.encode(shape(ratio=math.nan))).ratio)


# --- frames -------------------------------------------------------------------


def test_frame_layout_is_length_then_version_then_payload() -> None:
    msg = ErrorReply("wire", "x")
    payload = wire.encode(msg)
    assert wire.encode_frame(msg) == (len(payload) + 1).to_bytes(4, "big") + bytes([wire.PROTOCOL_VERSION]) + payload


def test_an_oversized_length_is_refused_from_the_header_alone() -> None:
    sixteen_mib = 16 * 2**20  # the default max_frame
    assert FrameDecoder().feed(sixteen_mib.to_bytes(4, "big")) == []
    with pytest.raises(WireError, match=f"length {sixteen_mib + 1} exceeds max_frame {sixteen_mib}"):
        FrameDecoder().feed((sixteen_mib + 1).to_bytes(4, "big"))


def test_max_frame_is_configurable_and_inclusive() -> None:
    data = wire.encode_frame(ErrorReply("x", "y" * 50))
    size = len(data) - 4
    assert FrameDecoder(max_frame=size).feed(data) == [ErrorReply("x", "y" * 50)]
    with pytest.raises(WireError, match=f"exceeds max_frame {size - 1}"):
        FrameDecoder(max_frame=size - 1).feed(data[:4])


def test_a_zero_length_frame_is_refused() -> None:
    with pytest.raises(WireError, match="length 0"):
        FrameDecoder().feed(bytes(4))


def test_a_frame_of_another_protocol_version_is_refused() -> None:
    data = frame(wire.encode(ErrorReply("x", "y")), version=wire.PROTOCOL_VERSION + 1)
    with pytest.raises(WireError, match=f"protocol version {wire.PROTOCOL_VERSION + 1}"):
        FrameDecoder().feed(data)


def test_a_frame_with_only_a_version_byte_is_refused() -> None:
    with pytest.raises(WireError, match="not valid CBOR"):
        FrameDecoder().feed(frame(b""))


def test_the_decoder_is_unusable_after_an_error() -> None:
    decoder = FrameDecoder()
    with pytest.raises(WireError):
        decoder.feed(bytes(4))
    assert decoder.pending == 0
    with pytest.raises(WireError, match="length 0"):
        decoder.feed(wire.encode_frame(ErrorReply("x", "y")))


def test_a_frame_half_received_waits_for_the_rest() -> None:
    data = wire.encode_frame(ErrorReply("x", "y"))
    decoder = FrameDecoder()
    assert decoder.feed(data[:2]) == []
    assert decoder.pending == 2
    assert decoder.feed(data[2:-1]) == []
    assert decoder.pending == len(data) - 1
    assert decoder.feed(data[-1:]) == [ErrorReply("x", "y")]


def test_encode_frame_refuses_a_frame_over_max_frame() -> None:
    msg = ErrorReply("x", "y" * 100)
    size = len(wire.encode(msg)) + 1
    assert len(wire.encode_frame(msg, max_frame=size)) == size + 4
    with pytest.raises(ValueError, match=f"keel.error: frame of {size} bytes exceeds max_frame {size - 1}"):
        wire.encode_frame(msg, max_frame=size - 1)


def test_encoding_a_str_in_an_int_field_fails_at_once_with_type_error() -> None:
    """A keel bug (wrong type handed to a message) must fail fast, not scan the int range."""
    with pytest.raises(TypeError, match="expected int, got str"):
        wire.encode(Request(id="one", body=ErrorReply("x", "y")))  # type: ignore[arg-type]


# --- fields: defaults, unknown keys, types ----------------------------------------


def test_unknown_keys_are_ignored() -> None:
    payload = tagged("keel.error", {"kind": "x", "message": "y", "added_in_v9": [1, 2], 7: b"non-string key"})
    assert wire.decode(payload) == ErrorReply("x", "y")


def test_a_missing_optional_field_gets_its_default() -> None:
    assert wire.decode(tagged("keel.error", {"kind": "x", "message": "y"})).leader_hint is None
    decoded = wire.decode(tagged("keel-tests.every-shape", shape_fields(drop=("later", "note"))))
    assert (decoded.later, decoded.note) == (7, None)


def test_a_missing_required_field_is_refused() -> None:
    with pytest.raises(WireError, match=r"message keel.error.message: missing"):
        wire.decode(tagged("keel.error", {"kind": "x"}))


def test_an_unknown_message_type_is_refused() -> None:
    with pytest.raises(WireError, match="unknown message type 'nobody.knows'"):
        wire.decode(tagged("nobody.knows", {}))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("count", True),  # bool where int expected
        ("count", 1.0),
        ("count", "1"),
        ("name", 5),  # int where str expected
        ("name", b"n"),
        ("blob", "b"),
        ("flag", 1),
        ("ratio", False),
        ("ratio", "0.5"),
        ("maybe", "1"),
        ("items", "abc"),
        ("items", ["a", 1]),
        ("items", {"a": 1}),
        ("pair", [1]),
        ("pair", [1, b"x", 2]),
        ("pair", ["1", b"x"]),
        ("labels", ["a", 1]),
        ("scores", {1: 1}),
        ("scores", {"a": "1"}),
        ("scores", [["a", 1]]),
        ("colour", "blue"),
        ("colour", 1),
        ("rank", True),  # True == 1, yet it is no Rank
        ("rank", 1.0),
        ("rank", "1"),
        ("rank", [1]),
        ("at", [1, 2]),
        ("at", {"x": 1}),
        ("at", {"x": 1, "y": "2"}),
        ("path", [{"x": 1, "y": None}]),
        ("inner", "keel.error"),
        ("inner", ["keel.error", {"kind": 1, "message": "m"}]),
        ("inner", ["keel.error"]),
        ("inner", [1, {}]),
        ("later", None),
    ],
)
def test_a_field_of_the_wrong_type_is_refused(field: str, value: object) -> None:
    with pytest.raises(WireError, match=f"keel-tests.every-shape.{field}"):
        wire.decode(tagged("keel-tests.every-shape", shape_fields(**{field: value})))


def test_a_value_the_class_validator_refuses_is_a_wire_error() -> None:
    with pytest.raises(WireError, match="keel-tests.bounded: ValueError"):
        wire.decode(tagged("keel-tests.bounded", {"size": -1}))


def test_whatever_a_validator_raises_leaves_the_decoder_as_a_wire_error() -> None:
    assert wire.decode(tagged("keel-tests.looked-up", {"role": "leader"})) == LookedUp("leader")
    with pytest.raises(WireError, match="keel-tests.looked-up: KeyError: 'usurper'"):
        wire.decode(tagged("keel-tests.looked-up", {"role": "usurper"}))


@pytest.mark.parametrize(
    "raw",
    [1, "keel.error", {}, [], ["keel.error"], ["keel.error", {}, {}], [b"keel.error", {}], ["keel.error", []]],
    ids=repr,
)
def test_a_payload_that_is_not_tag_and_fields_is_refused(raw: object) -> None:
    with pytest.raises(WireError):
        wire.decode(cbor2.dumps(raw))


# --- registration -------------------------------------------------------------


def test_registering_a_taken_tag_raises_value_error() -> None:
    with pytest.raises(ValueError, match="'keel.error' is already registered to ErrorReply"):

        @wire.message("keel.error")
        @attrs.frozen
        class Impostor:
            kind: str


@pytest.mark.parametrize(
    "annotation",
    [list[int], int | str, set[int], object, typing.Any, dict[Point, int], dict[tuple[int, int], str], dict[int | None, str]],
    ids=repr,
)
def test_registering_a_field_the_codec_cannot_carry_raises_value_error(annotation: object) -> None:
    odd = attrs.frozen(type("Odd", (), {"__annotations__": {"field": annotation}}))
    tag = f"keel-tests.odd.{annotation!r}"
    with pytest.raises(ValueError, match="Odd.field"):
        wire.message(tag)(odd)
    assert tag not in {wire.tag_of(c) for c in wire.registered()}


def test_registering_a_plain_class_raises_value_error() -> None:
    class Plain:
        pass

    with pytest.raises(ValueError, match="@attrs.frozen"):
        wire.message("keel-tests.plain")(Plain)


# --- hostile input ---------------------------------------------------------------

REQUEST_HEAD = bytes([0x82]) + cbor2.dumps("keel.request") + bytes([0xA2]) + cbor2.dumps("id") + b"\x01"

HOSTILE = {
    # Length headers far beyond the bytes that follow.
    "huge byte string": bytes([0x82]) + cbor2.dumps("keel.error") + bytes([0xA1]) + cbor2.dumps("kind")
    + bytes.fromhex("5b7fffffffffffffff") + b"x",
    "huge text string": bytes.fromhex("827f") + bytes.fromhex("7b7fffffffffffffff"),
    "huge array": bytes.fromhex("9b7fffffffffffffff00"),
    "huge map": bytes.fromhex("bb7fffffffffffffff0000"),
    "array of 2**32 ones": bytes.fromhex("9affffffff") + b"\x01" * 64,
    # Nesting far past MAX_DEPTH.
    "deep arrays": b"\x81" * 100_000 + b"\x00",
    "deep maps": b"\xa1\x00" * 100_000 + b"\x00",
    "deep indefinite arrays": b"\x9f" * 100_000,
    "deep inside a message": REQUEST_HEAD[:-1] + cbor2.dumps("body") + b"\x81" * 5000 + b"\x00",
    # Value sharing: a request whose body is the request itself.
    "shared cycle": bytes.fromhex("d81c") + REQUEST_HEAD + cbor2.dumps("body") + bytes.fromhex("d81d00"),
    "shared value": tagged("keel.error", {"kind": cbor2.CBORTag(28, "x"), "message": cbor2.CBORTag(29, 0)}),
    "shared cycle in a tree": tagged(
        "keel-tests.tree", {"trees": [cbor2.CBORTag(28, {"label": "t", "children": [cbor2.CBORTag(29, 0)]})], "by_rank": {}}
    ),
    # Semantic tags where plain values belong.
    "datetime string": tagged("keel.error", {"kind": cbor2.CBORTag(0, "2020-01-01T00:00:00Z"), "message": "m"}),
    "epoch datetime": tagged("keel.error", {"kind": cbor2.CBORTag(1, 10**30), "message": "m"}),
    "set": tagged("keel-tests.every-shape", shape_fields(labels=cbor2.CBORTag(258, ["a"]))),
    "bignum in an int field": tagged("keel-tests.bounded", {"size": cbor2.CBORTag(2, b"\xff" * 5000)}),
    "bignum in a float field": tagged("keel-tests.every-shape", shape_fields(ratio=cbor2.CBORTag(2, b"\xff" * 300))),
    "bignum in an enum field": tagged("keel-tests.every-shape", shape_fields(rank=cbor2.CBORTag(2, b"\xff" * 3000))),
    "bignum map key": tagged("keel-tests.every-shape", shape_fields(scores={cbor2.CBORTag(2, b"\xff" * 3000): 1})),
    "negative bignum": tagged("keel-tests.bounded", {"size": cbor2.CBORTag(3, b"\x01" * 9)}),
    "string references": bytes.fromhex("d90100") + tagged("keel.error", {"kind": "abc", "message": cbor2.CBORTag(25, 0)}),
    "self-described": bytes.fromhex("d9d9f7") + wire.encode(ErrorReply("x", "y")),
    "regular expression": tagged("keel.error", {"kind": cbor2.CBORTag(35, "(a+)+$"), "message": "m"}),
    "rational with zero denominator": tagged("keel.error", {"kind": cbor2.CBORTag(30, [1, 0]), "message": "m"}),
    "unknown tag": tagged("keel.error", {"kind": cbor2.CBORTag(99999, "x"), "message": "m"}),
    "tagged tag": tagged(cbor2.CBORTag(2, b"\x01"), {}),
    # Odd plain values.
    "NaN in an int field": tagged("keel-tests.bounded", {"size": math.nan}),
    "NaN in an enum field": tagged("keel-tests.every-shape", shape_fields(rank=math.nan)),
    "infinity in an int field": tagged("keel-tests.bounded", {"size": math.inf}),
    "undefined": tagged("keel.error", {"kind": cbor2.undefined, "message": "m"}),
    "simple value": tagged("keel.error", {"kind": cbor2.CBORSimpleValue(99), "message": "m"}),
    "array as a map key": tagged("keel-tests.every-shape", shape_fields(scores={(1, 2): 1})),
    "map as a map key": bytes.fromhex("82") + cbor2.dumps("keel.error") + bytes.fromhex("a1a10102") + b"\x01",
    "field map keyed by arrays": tagged("keel.error", {("kind",): "x", ("message",): "m"}),
    "array in a set of ints": tagged("keel-tests.tree", {"trees": [], "by_rank": {1: [[1]]}}),
    "invalid UTF-8": bytes.fromhex("82") + cbor2.dumps("keel.error") + bytes.fromhex("a2") + cbor2.dumps("kind")
    + bytes.fromhex("62c328") + cbor2.dumps("message") + cbor2.dumps("m"),
    "unterminated indefinite map": bytes.fromhex("82") + cbor2.dumps("keel.error") + bytes.fromhex("bf") + cbor2.dumps("kind"),
    "break outside a container": bytes.fromhex("ff"),
    "reserved additional info": bytes.fromhex("1c"),
    "trailing bytes": wire.encode(ErrorReply("x", "y")) + b"\x00",
    "two messages in one payload": wire.encode(ErrorReply("x", "y")) * 2,
    "truncated message": wire.encode(ErrorReply("x", "y"))[:-1],
    "empty payload": b"",
}


@pytest.mark.parametrize("payload", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_payloads_raise_wire_error(payload: bytes) -> None:
    with pytest.raises(WireError):
        wire.decode(payload)
    with pytest.raises(WireError):
        FrameDecoder().feed(frame(payload))


@FUZZ
@given(data=st.binary(max_size=200))
def test_random_bytes_raise_nothing_but_wire_error(data: bytes) -> None:
    decodes_or_wire_error(data)
    decodes_or_wire_error(frame(data))


# Any CBOR value cbor2 can write: ints of every size (past 64 bits cbor2 writes
# a bignum tag), NaN, undefined and simple values, and every tag cbor2 knows
# (plus one it does not), nested a little.
TAG_NUMBERS = [0, 1, 2, 3, 4, 5, 21, 22, 23, 24, 25, 28, 29, 30, 32, 35, 36, 37, 52, 54, 100, 256, 258, 260, 261, 1004, 43000, 55799, 65000]
CBOR_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70),
    # Bignums beyond float range; kept under the 4300 digits repr() will print, so a failure can be reported.
    st.builds(lambda bits, sign: sign * 2**bits, st.sampled_from([64, 1100, 14000]), st.sampled_from([1, -1])),
    st.floats(), st.text(max_size=5), st.binary(max_size=5),
    st.just(cbor2.undefined), st.sampled_from([0, 19, 32, 255]).map(cbor2.CBORSimpleValue),
)
CBOR_KEYS = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=5), st.binary(max_size=3))
CBOR_VALUES = st.recursive(
    CBOR_SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(CBOR_KEYS, inner, max_size=3),
        st.builds(cbor2.CBORTag, st.sampled_from(TAG_NUMBERS), inner),
    ),
    max_leaves=8,
)
ITSELF = object()  # stands for the message's own [tag, fields] array: a cycle, written with value sharing


@FUZZ
@given(msg=ANY_MESSAGE, data=st.data())
def test_any_cbor_value_in_any_field_raises_nothing_but_wire_error(msg: object, data: st.DataObject) -> None:
    raw = cbor2.loads(wire.encode(msg))
    fields = raw[1]
    if fields:
        value = data.draw(st.one_of(CBOR_VALUES, st.just(ITSELF)))
        fields[data.draw(st.sampled_from(sorted(fields)))] = raw if value is ITSELF else value
    decodes_or_wire_error(cbor2.dumps(raw, value_sharing=True))


def mutate(data: bytes, how: int, at: int, value: int, extra: bytes) -> bytes:
    """One of five mutations of `data` at offset `at` (taken modulo its length)."""
    if not data:
        return extra
    at %= len(data)
    if how == 0:  # flip one bit
        return data[:at] + bytes([data[at] ^ (1 << (value % 8))]) + data[at + 1 :]
    if how == 1:  # overwrite one byte
        return data[:at] + bytes([value % 256]) + data[at + 1 :]
    if how == 2:  # truncate
        return data[:at]
    if how == 3:  # insert bytes
        return data[:at] + extra + data[at:]
    return data[:at] + data[at + 1 + value % 8 :]  # delete bytes


MUTATION = st.tuples(st.integers(0, 4), st.integers(0, 2**16), st.integers(0, 255), st.binary(min_size=1, max_size=9))


@FUZZ
@given(msg=ANY_MESSAGE, mutations=st.lists(MUTATION, min_size=1, max_size=3))
def test_mutated_frames_raise_nothing_but_wire_error(msg: object, mutations: list[tuple[int, int, int, bytes]]) -> None:
    mutated = wire.encode_frame(msg)
    for how, at, value, extra in mutations:
        mutated = mutate(mutated, how, at, value, extra)
    decodes_or_wire_error(mutated)
    decodes_or_wire_error(mutated[5:])  # the payload alone, if the header survived


@QUICK
@given(data=st.data())
def test_a_truncated_payload_is_always_refused(data: st.DataObject) -> None:
    payload = wire.encode(data.draw(ANY_MESSAGE))
    cut = data.draw(st.integers(0, len(payload) - 1))
    with pytest.raises(WireError):
        wire.decode(payload[:cut])
