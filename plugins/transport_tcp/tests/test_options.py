"""`[transport.options]`: what an operator may write, and what is refused."""

from __future__ import annotations

import pytest

from keel_transport_tcp import TcpOptions


def test_whole_seconds_from_toml_are_accepted_as_floats():
    options = TcpOptions(backoff_initial=1, backoff_max=30, idle_timeout=10)
    assert (options.backoff_initial, options.backoff_max, options.idle_timeout) == (1.0, 30.0, 10.0)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"backoff_initial": 0}, "must be > 0"),
        ({"backoff_max": 0.01}, "below backoff_initial"),
        ({"backoff_jitter": 1.5}, "must be <= 1"),
        ({"backoff_jitter": True}, "must be <class 'float'>"),
        ({"keepalive_interval": 2.0, "idle_timeout": 3.0}, "below 2 × keepalive_interval"),
        ({"write_timeout": float("inf")}, "not a finite number"),
        ({"handshake_timeout": "5"}, "must be <class 'float'>"),
        ({"max_client_requests": 0}, "not a whole number of at least 1"),
        ({"max_client_requests": True}, "not a whole number of at least 1"),
    ],
)
def test_options_that_break_a_rule_are_refused(fields, message):
    with pytest.raises((ValueError, TypeError), match=message):
        TcpOptions(**fields)
