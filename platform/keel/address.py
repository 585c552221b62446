"""Network addresses as operators write them: `host:port`."""

from __future__ import annotations

import attrs

__all__ = ["Address"]

MAX_PORT = 65535


@attrs.frozen(order=True)
class Address:
    """A host and a TCP port; port 0 asks the OS for a free one."""

    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> Address:
        """Parse `host:port` (IPv6 as `[::1]:7000`).

        Raises:
            ValueError: with a message that quotes the text and says why.
        """
        if not isinstance(text, str):
            raise ValueError(f"{text!r} is not host:port")
        host, sep, port = text.rpartition(":")
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        if not sep or not host or any(c.isspace() for c in host):
            raise ValueError(f'"{text}" is not host:port')
        if not port.isdigit():
            raise ValueError(f'"{text}" is not host:port (port "{port}" is not a number)')
        number = int(port)
        if number > MAX_PORT:
            raise ValueError(f'"{text}" is not host:port (port {number} is above {MAX_PORT})')
        return cls(host=host, port=number)

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"
