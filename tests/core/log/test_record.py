"""Record framing: what scan reads back, and which damage it calls a torn tail."""

from __future__ import annotations

import struct
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keel.core.log.record import HEADER, MAX_RECORD, frame, scan

BODIES = (b"first", b"", b"third record" * 5)


def framed(*bodies: bytes) -> bytes:
    return b"".join(frame(b) for b in bodies)


@settings(max_examples=50, deadline=None, derandomize=True)
@given(bodies=st.lists(st.binary(max_size=64), max_size=6), start=st.binary(max_size=8))
def test_framed_bodies_scan_back_with_their_offsets(bodies, start):
    data = start + framed(*bodies)
    result = scan(data, len(start))
    assert result.damage is None
    assert [body for _, body in result.records] == bodies
    offsets = [len(start) + sum(HEADER.size + len(b) for b in bodies[:i]) for i in range(len(bodies))]
    assert [offset for offset, _ in result.records] == offsets


def test_a_record_cut_anywhere_is_torn_at_its_start():
    data = framed(*BODIES)
    last = len(data) - HEADER.size - len(BODIES[-1])
    for size in range(last + 1, len(data)):
        result = scan(data[:size], 0)
        assert result.damage is not None and result.damage.torn
        assert result.damage.offset == last
        assert [b for _, b in result.records] == list(BODIES[:-1])


def test_a_bad_body_at_the_end_or_before_zeros_is_torn_and_before_data_is_not():
    data = bytearray(framed(*BODIES))
    data[-1] ^= 0x40
    assert scan(bytes(data), 0).damage.torn
    assert scan(bytes(data) + bytes(100), 0).damage.torn
    damaged_first = bytearray(framed(*BODIES))
    damaged_first[HEADER.size] ^= 0x40
    damage = scan(bytes(damaged_first), 0).damage
    assert (damage.offset, damage.reason, damage.torn) == (0, "record body fails its CRC", False)


def test_a_damaged_length_is_caught_by_the_header_crc_not_read_as_a_torn_tail():
    data = bytearray(framed(*BODIES))
    data[0] = 0x7F  # the first record now claims a body far past the end of the file
    damage = scan(bytes(data), 0).damage
    assert (damage.offset, damage.reason, damage.torn) == (0, "record header fails its CRC", False)


def test_a_zeroed_tail_is_torn():
    data = framed(*BODIES[:1]) + bytes(64)
    damage = scan(data, 0).damage
    assert damage.torn and damage.offset == HEADER.size + len(BODIES[0])


def test_a_length_over_the_maximum_is_refused_before_any_body_is_read():
    first = struct.pack(">II", MAX_RECORD + 1, 0)
    data = first + struct.pack(">I", zlib.crc32(first)) + b"x" * 10
    damage = scan(data, 0).damage
    assert damage.reason == f"record length {MAX_RECORD + 1} exceeds the maximum {MAX_RECORD}"
    assert not damage.torn


def test_a_body_over_the_maximum_is_refused_when_framed():
    with pytest.raises(ValueError, match="body of 11 bytes exceeds the maximum 10"):
        frame(b"x" * 11, max_record=10)
