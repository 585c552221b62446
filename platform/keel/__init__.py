"""keel: a Consistent Core platform with swappable consensus, stores and transports."""

from __future__ import annotations

import pluggy

__all__ = ["CONTRACT_VERSION", "PROJECT", "__version__", "hookimpl"]

__version__ = "0.1.0"

PROJECT = "keel"  # pluggy project name and entry-point group

# The plugin contract's version, MAJOR.MINOR. A minor bump only adds (hooks,
# optional parameters); a major bump breaks, and a plugin built for another
# major is refused. Plugins declare the version they were built for as
# `KEEL_CONTRACT` in their plugin module.
CONTRACT_VERSION = "1.0"

hookimpl = pluggy.HookimplMarker(PROJECT)
