"""The wire format: registered messages, deterministic CBOR, length-prefixed frames.

A message is a frozen attrs class registered once under an explicit, stable
tag (`@message("keel.heartbeat")`); renaming the class never changes the wire.
Its payload is the CBOR array `[tag, {field: value}]`, encoded
deterministically (map keys in canonical order, floats 64-bit) so the same
message always gives the same bytes. Only plain CBOR types travel:
int, bytes, str, bool, null, float (only where the field is a float), array
and map. The decoder refuses every semantic tag (bignums, datetimes, sets,
value sharing, string references), so no field can hold a type, or a shared
or cyclic structure, that its annotation does not allow. Decoders ignore
unknown keys and fill missing keys that have a default, so adding an
optional field keeps the protocol version.

A frame is a 4-byte big-endian length, then one byte of protocol version,
then the payload; the length counts the version byte and the payload. The
length is checked against `max_frame` before any of the body is read.

Decoding untrusted bytes raises `WireError` and nothing else: every value is
checked against the field's annotation, so a peer can never hand the node an
object of a type it did not expect.
"""

from __future__ import annotations

import enum
import io
import struct
import types
import typing
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

import attrs
import cbor2

from keel.errors import WireError

__all__ = [
    "CBOR_INTS",
    "MAX_FRAME",
    "PROTOCOL_VERSION",
    "AnyMessage",
    "FrameDecoder",
    "decode",
    "decode_as",
    "decode_plain",
    "encode",
    "encode_frame",
    "encode_plain",
    "message",
    "registered",
    "tag_of",
]

PROTOCOL_VERSION = 1  # bump when a field is removed or its meaning changes
MAX_FRAME = 16 * 2**20  # bytes; a full append batch with headroom
MAX_DEPTH = 32  # nested CBOR containers a peer may send; our messages use < 8
HEADER = struct.Struct(">IB")  # length of (version + payload), protocol version
LENGTH = struct.Struct(">I")
CBOR_INTS = range(-(2**64), 2**64)  # what CBOR major types 0 and 1 hold; larger needs a bignum tag


class AnyMessage:
    """Annotation for a field that holds any registered message.

    Such a field travels with its tag (`[tag, fields]`), so the receiver knows
    which class to build; a field annotated with a concrete class travels as
    that class's field map alone.
    """


T = TypeVar("T")
Encode = Callable[[Any], Any]
Decode = Callable[[Any, str], Any]


@attrs.frozen
class _Codec:
    encode: Encode
    decode: Decode  # (plain value, field path for errors) -> value


@attrs.frozen
class _MessageType:
    tag: str
    cls: type
    fields: tuple[tuple[str, _Codec, bool], ...]  # name, codec, has a default


_BY_TAG: dict[str, _MessageType] = {}
_BY_CLASS: dict[type, _MessageType] = {}
_STRUCTS: dict[type, _MessageType] = {}  # unregistered attrs classes nested in messages


def message(tag: str) -> Callable[[type[T]], type[T]]:
    """Register a frozen attrs class as a wire message under `tag`.

    Tags are namespaced by their owner (`keel.`, `raft.`, `tcp.`…) and must be
    unique across every installed plugin.

    Raises:
        ValueError: the tag is taken, or the class is not a frozen attrs class
            whose fields all have annotations this codec knows.
    """

    def register(cls: type[T]) -> type[T]:
        if tag in _BY_TAG:
            raise ValueError(f"wire tag {tag!r} is already registered to {_BY_TAG[tag].cls.__qualname__}")
        kind = _struct_type(cls, tag)
        _BY_TAG[tag] = kind
        _BY_CLASS[cls] = kind
        return cls

    return register


def registered() -> tuple[type, ...]:
    """Every registered message class, in tag order (for tests and docs)."""
    return tuple(_BY_TAG[tag].cls for tag in sorted(_BY_TAG))


def tag_of(cls: type) -> str:
    """The wire tag of a registered message class."""
    return _BY_CLASS[cls].tag


def encode(msg: object) -> bytes:
    """Encode a registered message as a deterministic CBOR payload.

    Every map is built with its keys in canonical order and sets are
    sorted, so the plain encoder gives the same bytes for equal messages;
    floats are always 64-bit (cbor2's canonical mode would shorten them, at
    nearly three times the cost of the whole encoding).

    Raises:
        TypeError: `msg` (or a message inside it) is not of a registered class.
        ValueError: an integer is beyond what CBOR holds without a bignum tag.
    """
    return cbor2.dumps(_tagged(msg))


def encode_plain(value: Any) -> bytes:
    """Encode plain data (no message: a store's record, say) as canonical CBOR: equal values, equal bytes.

    Raises:
        TypeError: `value` holds something other than plain CBOR types.
    """
    _check_plain(value, "value", 0)
    return cbor2.dumps(value, canonical=True)


def _check_plain(value: Any, path: str, depth: int) -> None:
    # What decode_plain accepts back: a set or a datetime would need a semantic tag.
    if depth > MAX_DEPTH:
        raise TypeError(f"{path}: nested deeper than {MAX_DEPTH}")
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _check_plain(item, f"{path}[{i}]", depth + 1)
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_plain(key, f"{path} key", depth + 1)
            _check_plain(item, f"{path}[{key!r}]", depth + 1)
    elif type(value) is int:
        if value not in CBOR_INTS:
            raise TypeError(f"{path}: an integer of {value.bit_length()} bits needs a bignum tag")
    elif not (value is None or type(value) in (bool, float, str, bytes)):
        raise TypeError(f"{path}: {type(value).__name__} is not plain data (int, float, bool, str, bytes, None, "
                        f"list, dict)")


def decode_plain(payload: bytes, what: str) -> Any:
    """Decode bytes that `encode_plain` made, from an untrusted source; `what` names it in errors.

    Raises:
        WireError: the bytes are not one item of plain CBOR (no semantic
            tags, nesting within `MAX_DEPTH`).
    """
    stream = io.BytesIO(payload)
    try:
        value = cbor2.CBORDecoder(stream, semantic_decoders=_NO_TAGS, max_depth=MAX_DEPTH).decode()
    except Exception as exc:  # noqa: BLE001 - any failure on untrusted bytes is a WireError
        raise WireError(f"{what}: not valid CBOR ({type(exc).__name__}: {exc})") from None
    if stream.tell() != len(payload):
        raise WireError(f"{what}: {len(payload) - stream.tell()} bytes after the value")
    return value


def decode(payload: bytes) -> Any:
    """Decode one payload into its message.

    Raises:
        WireError: the bytes are not valid plain CBOR, hold more than one
            item, name no known tag, or a field is missing or of the wrong type.
    """
    stream = io.BytesIO(payload)
    try:
        raw = cbor2.CBORDecoder(stream, semantic_decoders=_NO_TAGS, max_depth=MAX_DEPTH).decode()
    except Exception as exc:  # noqa: BLE001 - any failure on untrusted bytes is a WireError
        raise WireError(f"payload: not valid CBOR ({type(exc).__name__}: {exc})") from None
    # The decoder hands back what it read past the item, so the position is exact.
    if stream.tell() != len(payload):
        raise WireError(f"payload: {len(payload) - stream.tell()} bytes after the message")
    return _untagged(raw, "message")


def decode_as(payload: bytes, cls: type[T], what: str) -> T:
    """Decode bytes that must hold a `cls` record (a record kept on disk, say).

    Raises:
        WireError: the bytes do not decode, or hold another record; `what` says where they came from.
    """
    record = decode(payload)
    if not isinstance(record, cls):
        raise WireError(f"{what}: expected {tag_of(cls)}, got {tag_of(type(record))}")
    return record


def encode_frame(msg: object, *, max_frame: int = MAX_FRAME) -> bytes:
    """Encode a message as one frame: length, protocol version, payload.

    Raises:
        ValueError: the frame would exceed `max_frame`; the sender must split it.
    """
    payload = encode(msg)
    size = len(payload) + 1
    if size > max_frame:
        raise ValueError(f"{tag_of(type(msg))}: frame of {size} bytes exceeds max_frame {max_frame}")
    return HEADER.pack(size, PROTOCOL_VERSION) + payload


class FrameDecoder:
    """Turns a byte stream into messages, frame by frame.

    Feed it whatever arrived; it returns the messages of every complete frame
    and keeps the rest. After it raises, the stream is unusable: close it.
    """

    def __init__(self, *, max_frame: int = MAX_FRAME) -> None:
        self._max_frame = max_frame
        self._buffer = bytearray()
        self._need: int | None = None  # body length of the frame being read
        self._broken: WireError | None = None

    def feed(self, data: bytes) -> list[Any]:
        """Add bytes; return the messages now complete, in order.

        Raises:
            WireError: an oversized or empty frame, a wrong protocol version,
                or a payload that does not decode.
        """
        if self._broken is not None:
            raise self._broken
        self._buffer += data
        try:
            return list(self._frames())
        except WireError as exc:
            self._broken = exc
            self._buffer.clear()
            raise

    @property
    def pending(self) -> int:
        """Bytes received that do not yet make a whole frame."""
        # Once a header is read it leaves the buffer, but its frame is not whole yet.
        return len(self._buffer) + (LENGTH.size if self._need is not None else 0)

    def _frames(self) -> Iterator[Any]:
        while True:
            if self._need is None:
                if len(self._buffer) < LENGTH.size:
                    return
                (size,) = LENGTH.unpack_from(self._buffer)
                if size > self._max_frame:
                    raise WireError(f"frame: length {size} exceeds max_frame {self._max_frame}")
                if size == 0:
                    raise WireError("frame: length 0 leaves no room for the protocol version")
                del self._buffer[: LENGTH.size]
                self._need = size
            if len(self._buffer) < self._need:
                return
            body = bytes(self._buffer[: self._need])
            del self._buffer[: self._need]
            self._need = None
            if body[0] != PROTOCOL_VERSION:
                raise WireError(f"frame: protocol version {body[0]}, this node speaks {PROTOCOL_VERSION}")
            yield decode(body[1:])


class _RefuseTags(Mapping[int, Callable[[Any, bool], Any]]):
    """A decoder for every CBOR tag number, and each one refuses its tag.

    cbor2 looks tags up here before its built-in decoders and `tag_hook`, so
    this keeps peers to plain CBOR. The built-ins are not harmless: value
    sharing (tags 28/29) lets a few bytes build a cycle (endless recursion
    through an `AnyMessage` field) or a graph shared a million times over,
    and bignums, datetimes, sets and regular expressions are types no field has.
    """

    def __getitem__(self, tag: int) -> Callable[[Any, bool], Any]:
        def refuse(value: Any, immutable: bool) -> Any:
            raise ValueError(f"CBOR tag {tag} is not allowed on the wire")

        return refuse

    def __iter__(self) -> Iterator[int]:
        return iter(())

    def __len__(self) -> int:
        return 0


_NO_TAGS = _RefuseTags()


# --- type-driven conversion between messages and plain CBOR values -----------


def _tagged(msg: object) -> list[Any]:
    kind = _BY_CLASS.get(type(msg))
    if kind is None:
        raise TypeError(f"{type(msg).__qualname__} is not a registered wire message")
    return [kind.tag, _fields_to_plain(kind, msg)]


def _untagged(raw: Any, path: str) -> Any:
    if not (isinstance(raw, list) and len(raw) == 2 and type(raw[0]) is str):
        raise WireError(f"{path}: expected [tag, fields], got {_describe(raw)}")
    kind = _BY_TAG.get(raw[0])
    if kind is None:
        raise WireError(f"{path}: unknown message type {raw[0][:80]!r}")
    return _fields_from_plain(kind, raw[1], f"{path} {kind.tag}")


def _fields_to_plain(kind: _MessageType, obj: object) -> dict[str, Any]:
    return {name: codec.encode(getattr(obj, name)) for name, codec, _ in kind.fields}


def _fields_from_plain(kind: _MessageType, raw: Any, path: str) -> Any:
    if type(raw) is not dict:
        raise WireError(f"{path}: expected a map of fields, got {_describe(raw)}")
    values = {}
    for name, codec, has_default in kind.fields:
        if name in raw:
            values[name] = codec.decode(raw[name], f"{path}.{name}")
        elif not has_default:
            raise WireError(f"{path}.{name}: missing")
    try:
        return kind.cls(**values)
    except Exception as exc:  # noqa: BLE001 - a validator refused a peer's value; whatever it raises, only WireError leaves
        raise WireError(f"{path}: {type(exc).__name__}: {exc}") from None


def _describe(raw: Any) -> str:
    return type(raw).__name__


def _struct_type(cls: type, tag: str) -> _MessageType:
    if not attrs.has(cls):
        raise ValueError(f"{cls.__qualname__}: wire messages must be @attrs.frozen classes")
    hints = typing.get_type_hints(cls)
    fields = []
    for field in attrs.fields(cls):
        if not field.init:
            continue
        name = field.alias or field.name
        if name != field.name:
            raise ValueError(f"{cls.__qualname__}.{field.name}: private or aliased fields cannot travel")
        fields.append((field.name, _codec(hints[field.name], f"{cls.__qualname__}.{field.name}"),
                       field.default is not attrs.NOTHING))
    # Fields in the order canonical CBOR sorts map keys (shorter first, then by
    # bytes), so a plain encoder, much faster than cbor2's canonical mode,
    # writes every map already sorted.
    fields.sort(key=lambda f: _key_order(f[0]))
    return _MessageType(tag=tag, cls=cls, fields=tuple(fields))


def _key_order(key: Any) -> tuple[int, bytes]:
    encoded = cbor2.dumps(key)
    return len(encoded), encoded


def _scalar(kind: type) -> _Codec:
    def check(raw: Any, path: str) -> Any:
        # bool is an int in Python; on the wire they are distinct types.
        if type(raw) is not kind:
            raise WireError(f"{path}: expected {kind.__name__}, got {_describe(raw)}")
        return raw

    return _Codec(encode=lambda v: v, decode=check)


def _int() -> _Codec:
    def encode(value: int) -> int:
        # Type first: `x in range` on a non-int compares against every member.
        if type(value) is not int:
            raise TypeError(f"expected int, got {type(value).__name__}")
        if value not in CBOR_INTS:
            raise ValueError(f"an integer of {value.bit_length()} bits cannot travel (CBOR holds -2**64 .. 2**64-1)")
        return value

    return _Codec(encode=encode, decode=_scalar(int).decode)


def _float() -> _Codec:
    def check(raw: Any, path: str) -> float:
        if type(raw) is float:
            return raw
        if type(raw) is int:  # canonical CBOR may not shrink a float to int, but accept it
            return float(raw)
        raise WireError(f"{path}: expected float, got {_describe(raw)}")

    # -0.0 == 0.0, so equal messages must not differ in the sign of a zero;
    # adding +0.0 turns -0.0 into 0.0 and leaves every other value alone.
    return _Codec(encode=lambda v: float(v) + 0.0, decode=check)


def _none() -> _Codec:
    def check(raw: Any, path: str) -> None:
        if raw is not None:
            raise WireError(f"{path}: expected null, got {_describe(raw)}")

    return _Codec(encode=lambda v: None, decode=check)


def _union(options: tuple[Any, ...], where: str) -> _Codec:
    # Only `X | None` is supported: a general union would need a tag per arm.
    non_null = [o for o in options if o is not type(None)]
    if len(non_null) != 1 or len(options) != 2:
        raise ValueError(f"{where}: only Optional (X | None) unions can travel")
    inner = _codec(non_null[0], where)

    def decode(raw: Any, path: str) -> Any:
        return None if raw is None else inner.decode(raw, path)

    return _Codec(encode=lambda v: None if v is None else inner.encode(v), decode=decode)


def _sequence(items: tuple[Any, ...], where: str) -> _Codec:
    if len(items) == 2 and items[1] is Ellipsis:
        item = _codec(items[0], where)

        def decode_any(raw: Any, path: str) -> tuple[Any, ...]:
            if type(raw) is not list:
                raise WireError(f"{path}: expected array, got {_describe(raw)}")
            return tuple(item.decode(value, f"{path}[{i}]") for i, value in enumerate(raw))

        return _Codec(encode=lambda v: [item.encode(x) for x in v], decode=decode_any)
    codecs = tuple(_codec(t, where) for t in items)

    def decode_fixed(raw: Any, path: str) -> tuple[Any, ...]:
        if type(raw) is not list or len(raw) != len(codecs):
            raise WireError(f"{path}: expected array of {len(codecs)}, got {_describe(raw)}")
        return tuple(c.decode(v, f"{path}[{i}]") for i, (c, v) in enumerate(zip(codecs, raw)))

    return _Codec(encode=lambda v: [c.encode(x) for c, x in zip(codecs, v)], decode=decode_fixed)


def _frozenset(item_type: Any, where: str) -> _Codec:
    item = _codec(item_type, where)

    def encode(value: frozenset[Any]) -> list[Any]:
        # Sorted by encoded bytes so equal sets give equal frames.
        return sorted((item.encode(v) for v in value), key=lambda p: cbor2.dumps(p, canonical=True))

    def decode(raw: Any, path: str) -> frozenset[Any]:
        if type(raw) is not list:
            raise WireError(f"{path}: expected array, got {_describe(raw)}")
        try:
            return frozenset(item.decode(v, f"{path}[{i}]") for i, v in enumerate(raw))
        except TypeError:  # unhashable member
            raise WireError(f"{path}: members must be hashable") from None

    return _Codec(encode=encode, decode=decode)


def _mapping(key_type: Any, value_type: Any, where: str) -> _Codec:
    # Other keys would encode to arrays or maps, which cannot be Python dict keys.
    if not (key_type in (int, str, bytes, bool, float) or (isinstance(key_type, type) and issubclass(key_type, enum.Enum))):
        raise ValueError(f"{where}: map keys must be int, str, bytes, bool, float or an enum, not {key_type!r}")
    key, value = _codec(key_type, where), _codec(value_type, where)

    def decode(raw: Any, path: str) -> dict[Any, Any]:
        if type(raw) is not dict:
            raise WireError(f"{path}: expected map, got {_describe(raw)}")
        return {key.decode(k, f"{path} key"): value.decode(v, f"{path}[{k!r}]") for k, v in raw.items()}

    def encode(m: dict[Any, Any]) -> dict[Any, Any]:
        pairs = [(key.encode(k), value.encode(v)) for k, v in m.items()]
        return dict(sorted(pairs, key=lambda kv: _key_order(kv[0])))  # map keys in canonical order

    return _Codec(encode=encode, decode=decode)


def _enum(cls: type[enum.Enum]) -> _Codec:
    def decode(raw: Any, path: str) -> enum.Enum:
        try:
            member = cls(raw)
        except (ValueError, TypeError):
            member = None
        # Enum lookup goes by equality, so `true` or 1.0 would find the member valued 1.
        if member is None or type(member.value) is not type(raw):
            raise WireError(f"{path}: {_describe(raw)} {str(raw)[:80]!r} is not a {cls.__name__}")
        return member

    return _Codec(encode=lambda v: v.value, decode=decode)


def _nested(cls: type) -> _Codec:
    def lookup() -> _MessageType:
        kind = _BY_CLASS.get(cls) or _STRUCTS.get(cls)
        if kind is None:
            kind = _STRUCTS[cls] = _struct_type(cls, cls.__qualname__)
        return kind

    return _Codec(
        encode=lambda v: _fields_to_plain(lookup(), v),
        decode=lambda raw, path: _fields_from_plain(lookup(), raw, path),
    )


def _codec(annotation: Any, where: str) -> _Codec:
    if annotation is int:
        return _int()
    if annotation in (str, bytes, bool):
        return _scalar(annotation)
    if annotation is float:
        return _float()
    if annotation is type(None) or annotation is None:
        return _none()
    if annotation is AnyMessage:
        return _Codec(encode=_tagged, decode=_untagged)
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return _enum(annotation)
    if isinstance(annotation, type) and attrs.has(annotation):
        return _nested(annotation)
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        return _union(args, where)
    if origin is tuple:
        return _sequence(args, where)
    if origin is frozenset:
        return _frozenset(args[0], where)
    if origin is dict:
        return _mapping(args[0], args[1], where)
    raise ValueError(f"{where}: annotation {annotation!r} cannot travel on the wire")
