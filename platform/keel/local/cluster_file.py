"""`cluster.json`: what `keel up` started, for `keel status` and other tools.

```json
{"format": 1, "transport": "tcp", "nodes": [
  {"id": "c1", "roles": ["core"], "pid": 4242, "peer_address": "127.0.0.1:40001",
   "client_address": "127.0.0.1:40002", "config": ".../nodes/c1/node.toml",
   "log": ".../nodes/c1/node.log", "exit_status": null}]}
```
`exit_status` is null while the node runs and its exit status once it died
(negative: killed by that signal).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import attrs

from keel.address import Address
from keel.errors import ConfigError

__all__ = ["FORMAT", "ClusterFile", "ClusterNode"]

FORMAT = 1  # bump when a field is removed or changes meaning


@attrs.frozen(kw_only=True)
class ClusterNode:
    """One node as `keel up` started it."""

    id: str
    roles: tuple[str, ...]
    pid: int | None
    peer_address: Address
    client_address: Address
    config: str
    log: str
    exit_status: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "roles": list(self.roles),
            "pid": self.pid,
            "peer_address": str(self.peer_address),
            "client_address": str(self.client_address),
            "config": self.config,
            "log": self.log,
            "exit_status": self.exit_status,
        }


@attrs.frozen(kw_only=True)
class ClusterFile:
    """The whole file."""

    transport: str
    nodes: tuple[ClusterNode, ...]

    def to_json(self) -> dict[str, Any]:
        return {"format": FORMAT, "transport": self.transport, "nodes": [n.to_json() for n in self.nodes]}

    def write(self, path: Path) -> None:
        """Replace the file atomically, so a reader never sees half of it."""
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, path)

    @classmethod
    def read(cls, path: Path, *, field: str = "--cluster") -> ClusterFile:
        """Read a cluster file.

        Raises:
            ConfigError: naming `field`, when the file is missing or malformed.
        """
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(field, f"{path}: cannot read ({exc.strerror or exc}); is the cluster up (keel up)?") from None
        except ValueError as exc:
            raise ConfigError(field, f"{path}: not JSON ({exc})") from None
        try:
            if doc.get("format") != FORMAT:
                raise ValueError(f"format {doc.get('format')!r}, expected {FORMAT}")
            nodes = tuple(
                ClusterNode(
                    id=str(n["id"]),
                    roles=tuple(n["roles"]),
                    pid=n["pid"],
                    peer_address=Address.parse(n["peer_address"]),
                    client_address=Address.parse(n["client_address"]),
                    config=str(n["config"]),
                    log=str(n["log"]),
                    exit_status=n.get("exit_status"),
                )
                for n in doc["nodes"]
            )
            return cls(transport=str(doc["transport"]), nodes=nodes)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ConfigError(field, f"{path}: not a keel cluster file ({type(exc).__name__}: {exc})") from None
