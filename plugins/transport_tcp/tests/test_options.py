"""`[transport.options]`: what an operator may write, and what is refused."""

from __future__ import annotations

import pytest

from keel.config import build
from keel.errors import ConfigError
from keel_transport_tcp import TcpOptions


def test_whole_seconds_from_toml_are_accepted_as_floats():
    options = TcpOptions(backoff_initial=1, backoff_max=30, idle_timeout=10)
    assert (options.backoff_initial, options.backoff_max, options.idle_timeout) == (1.0, 30.0, 10.0)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"backoff_initial": 0}, "not a positive, finite number of seconds"),
        ({"write_timeout": float("inf")}, "not a positive, finite number of seconds"),
        ({"handshake_timeout": "5"}, "not a positive, finite number of seconds"),
        ({"backoff_jitter": 1.5}, "not a fraction from 0 to 1"),
        ({"backoff_jitter": True}, "not a fraction from 0 to 1"),
        ({"max_client_requests": 0}, "not a whole number of at least 1"),
        ({"max_client_requests": True}, "not a whole number of at least 1"),
        ({"backoff_max": 0.01}, r"0.01 is below backoff_initial \(0.05\)"),
        ({"keepalive_interval": 2.0, "idle_timeout": 3.0}, r"3 is below 2 × keepalive_interval \(2\)"),
    ],
)
def test_options_that_break_a_rule_are_refused(fields, message):
    with pytest.raises(ValueError, match=message):
        TcpOptions(**fields)


@pytest.mark.parametrize(
    ("table", "where"),
    [
        ({"backoff_jitter": 2}, "transport.options.backoff_jitter: 2.0 is not a fraction"),
        ({"backoff_max": 0.01}, "transport.options.backoff_max: 0.01 is below backoff_initial (0.05)"),
        ({"keepalive_interval": 3, "idle_timeout": 5}, "transport.options.idle_timeout: 5 is below 2 × keepalive_interval (3)"),
        ({"keepalive": 1}, "transport.options.keepalive: unknown key"),
    ],
)
def test_the_host_config_loader_names_the_field_an_operator_got_wrong(table, where):
    with pytest.raises(ConfigError) as caught:
        build(TcpOptions, table, "transport.options")
    assert str(caught.value).startswith(where)
