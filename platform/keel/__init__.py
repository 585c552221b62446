"""keel: a Consistent Core platform with swappable consensus, stores and transports."""

from __future__ import annotations

from typing import Any

import pluggy

__all__ = ["CONTRACT_VERSION", "PROJECT", "Client", "__version__", "connect", "hookimpl"]

__version__ = "0.1.0"

PROJECT = "keel"  # pluggy project name and entry-point group

# The plugin contract's version, MAJOR.MINOR. A minor bump only adds (hooks,
# optional parameters); a major bump breaks, and a plugin built for another
# major is refused. Plugins declare the version they were built for as
# `KEEL_CONTRACT` in their plugin module.
# 1.1: Ready.send_early (engines that leave it empty behave as in 1.0).
# 1.2: an Append may replace the entries from its first index on, in one record, and a
# CompactTo may keep the entries after its snapshot whatever the entry at its index.
# 1.3: the store contract (`keel.data.store.Store`): what `keel_stores` factories build.
CONTRACT_VERSION = "1.3"

hookimpl = pluggy.HookimplMarker(PROJECT)


# Every plugin imports `keel`; the client (trio, the transport interface,
# the core's protocol) loads only when a program asks for it (PEP 562),
# `keel.aio` (the asyncio door) included.
_CLIENT_NAMES = ("Client", "connect")


def __getattr__(name: str) -> Any:
    if name in _CLIENT_NAMES:
        from keel import client  # noqa: PLC0415

        return getattr(client, name)
    if name == "aio":  # `keel.aio.connect(...)` after a bare `import keel`
        import keel.aio  # noqa: PLC0415

        return keel.aio
    raise AttributeError(f"module 'keel' has no attribute {name!r}")
