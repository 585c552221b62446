"""Addresses as operators write them: `host:port`, IPv6 in brackets."""

from __future__ import annotations

import pytest

from keel.address import Address


@pytest.mark.parametrize(
    ("text", "host", "port"),
    [
        ("10.0.0.1:7000", "10.0.0.1", 7000),
        ("localhost:0", "localhost", 0),
        ("node-1.example.org:65535", "node-1.example.org", 65535),
        ("[::1]:7000", "::1", 7000),
        ("[fe80::1%eth0]:1", "fe80::1%eth0", 1),
        ("h:007", "h", 7),
    ],
)
def test_host_and_port_are_parsed(text: str, host: str, port: int) -> None:
    assert Address.parse(text) == Address(host, port)


@pytest.mark.parametrize("text", ["10.0.0.1:7000", "[::1]:7000", "localhost:0"])
def test_an_address_prints_as_it_parses(text: str) -> None:
    assert str(Address.parse(text)) == text
    assert Address.parse(str(Address.parse(text))) == Address.parse(text)


BAD = [
    ("10.0.0.1:x", '(port "x" is not a number)'),
    ("10.0.0.1", ""),
    ("10.0.0.1:", '(port "" is not a number)'),
    (":7000", ""),
    ("[]:7000", ""),
    ("my host:7000", ""),
    ("h:-1", '(port "-1" is not a number)'),
    ("h:+80", '(port "+80" is not a number)'),
    ("h: 80", '(port " 80" is not a number)'),
    ("h:²", '(port "²" is not a number)'),  # isdigit() says yes, int() says no
    ("h:٨٠", '(port "٨٠" is not a number)'),  # Arabic-Indic digits
    ("h:65536", "(port 65536 is above 65535)"),
    ("h:" + "9" * 5000, "is above 65535)"),  # longer than int() converts by default
    ("::1:7000", "(an IPv6 host goes in brackets: [::1]:7000)"),
    ("fe80::1", "(an IPv6 host goes in brackets: [::1]:7000)"),
    ("[::1]x:7000", ""),
    ("a]b:7000", ""),
]


@pytest.mark.parametrize(("text", "why"), BAD, ids=[text[:16] for text, _ in BAD])
def test_a_bad_address_is_refused_quoting_the_input(text: str, why: str) -> None:
    with pytest.raises(ValueError) as caught:
        Address.parse(text)
    message = str(caught.value)
    assert message.startswith(f'"{text}" is not host:port')
    assert message.endswith(why)


def test_a_non_string_is_refused() -> None:
    with pytest.raises(ValueError, match="7000 is not host:port"):
        Address.parse(7000)  # type: ignore[arg-type]


def test_addresses_order_by_host_then_port() -> None:
    addresses = [Address("b", 1), Address("a", 2), Address("a", 1)]
    assert sorted(addresses) == [Address("a", 1), Address("a", 2), Address("b", 1)]
