"""Transaction builders: text becomes UTF-8 bytes; a wrong operator is refused before sending."""

from __future__ import annotations

import pytest

from keel.client import absent, compare_lease, compare_value, compare_version, delete_op, get_op, put_op
from keel.client.encoding import as_bytes
from keel.core.api import Compare, Delete, Put, Range


def test_builders_make_the_protocol_messages() -> None:
    assert compare_value("k", "==", "é") == Compare(b"k", "value", "==", value="é".encode())
    assert compare_version(b"k", ">", 2) == Compare(b"k", "version", ">", number=2)
    assert absent("k") == Compare(b"k", "version", "==", number=0)
    assert compare_lease("k", "==", 7) == Compare(b"k", "lease", "==", number=7)
    assert put_op("k", b"\x00", lease=5) == Put(b"k", b"\x00", 5, False)
    assert delete_op("k", prefix=True) == Delete(b"k", True, False)
    assert get_op("k", limit=3) == Range(b"k", limit=3)


def test_a_wrong_operator_or_type_is_refused() -> None:
    with pytest.raises(ValueError, match="operator"):
        compare_value("k", "=", "v")
    with pytest.raises(TypeError, match="key"):
        as_bytes(3, "key")  # type: ignore[arg-type]
