"""The node protocol's output record."""

from __future__ import annotations

from keel.sim import Output


def test_output_fields_become_tuples_so_a_poll_cannot_be_mutated_later():
    out = Output(persist=[1], send=[("b", "hi")], events=iter(["e"]))
    assert out == Output(persist=(1,), send=(("b", "hi"),), events=("e",))


def test_empty_output_asks_for_nothing():
    assert Output() == Output(persist=(), send=(), events=())
