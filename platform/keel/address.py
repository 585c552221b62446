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
        bracketed = host.startswith("[") and host.endswith("]")
        if bracketed:
            host = host[1:-1]
        if not sep or not host or any(c.isspace() or c in "[]" for c in host):
            raise ValueError(f'"{text}" is not host:port')
        if ":" in host and not bracketed:
            # `fe80::1` would otherwise parse as host `fe80:` port 1.
            raise ValueError(f'"{text}" is not host:port (an IPv6 host goes in brackets: [::1]:7000)')
        # isdigit() alone admits digits like "²" or "١" that int() refuses or reads unexpectedly.
        if not (port.isascii() and port.isdigit()):
            raise ValueError(f'"{text}" is not host:port (port "{port}" is not a number)')
        if len(port.lstrip("0")) > len(str(MAX_PORT)) or int(port) > MAX_PORT:
            raise ValueError(f'"{text}" is not host:port (port {port} is above {MAX_PORT})')
        return cls(host=host, port=int(port))

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"
