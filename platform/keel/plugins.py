"""The plugin manager: built-ins plus entry points of group `keel`.

Built-in plugins load through the same path as installed ones, so the host
gets no shortcut a third-party author would not. Loading a plugin means:
import its module, check the contract major version it declares
(`KEEL_CONTRACT`), register it with pluggy, then, once all are in, ask
pluggy to validate every hook implementation (`check_pending`), so a
misspelled hook fails loudly instead of silently never being called.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import inspect
from collections.abc import Callable, Iterable
from types import ModuleType
from typing import Any

import attrs
import pluggy

from keel import CONTRACT_VERSION, PROJECT, hookspecs
from keel.contract import ConsensusPlugin, Kind, Registration, StorePlugin, TransportPlugin
from keel.errors import ConfigError, PluginError

__all__ = ["BUILTINS", "Installed", "PluginSet", "PluginSource", "load"]

# Host modules that are plugins: (plugin name, module).
BUILTINS = (("memory", "keel.transport.memory"),)

_REGISTRATION_HOOKS = {
    Kind.TRANSPORT: ("keel_transports", TransportPlugin),
    Kind.CONSENSUS: ("keel_consensus_engines", ConsensusPlugin),
    Kind.STORE: ("keel_stores", StorePlugin),
}


@attrs.frozen
class PluginSource:
    """Where a plugin module comes from, before it is imported."""

    name: str  # the entry point's name
    distribution: str
    load: Callable[[], Any]


@attrs.frozen
class Installed:
    """One registered factory and where it came from."""

    registration: Registration
    plugin: str  # the entry point that registered it
    distribution: str
    contract: str

    @property
    def kind(self) -> Kind:
        return self.registration.kind

    @property
    def name(self) -> str:
        return self.registration.name

    def describe(self) -> dict[str, str]:
        """The row `keel plugins --json` prints."""
        return {
            "name": self.name,
            "kind": self.kind.value,
            "version": self.registration.version,
            "distribution": self.distribution,
            "contract": self.contract,
            "summary": self.registration.summary,
        }


class PluginSet:
    """The loaded plugins: their factories by kind and name, and the hooks."""

    def __init__(self, manager: pluggy.PluginManager, installed: Iterable[Installed]) -> None:
        self.manager = manager
        self.installed = tuple(sorted(installed, key=lambda i: (i.kind.value, i.name)))

    @property
    def hook(self) -> Any:
        """Pluggy's hook relay, for the observation hooks."""
        return self.manager.hook

    def names(self, kind: Kind) -> tuple[str, ...]:
        return tuple(i.name for i in self.installed if i.kind is kind)

    def get(self, kind: Kind, name: str, *, field: str) -> Any:
        """The factory record of plugin `name`, for config field `field`.

        Raises:
            ConfigError: no installed plugin of that kind has that name; the
                message lists the installed names.
        """
        for item in self.installed:
            if item.kind is kind and item.name == name:
                return item.registration
        names = ", ".join(self.names(kind)) or "none"
        raise ConfigError(field, f'"{name}" is not an installed {kind.value} plugin (installed: {names})')


def load(sources: Iterable[PluginSource] | None = None) -> PluginSet:
    """Load and validate plugins; by default the built-ins and every entry point.

    Raises:
        PluginError: a plugin fails to import, declares no contract or one of
            another major version, implements an unknown hook, a hook with a
            parameter its spec lacks or an async hook, raises from or returns
            something other than registration records from a registration
            hook, or registers a name another plugin already took.
    """
    manager = pluggy.PluginManager(PROJECT)
    manager.add_hookspecs(hookspecs)
    modules = []
    for source in default_sources() if sources is None else sources:
        module = _import(source)
        contract = _contract(source, module)
        _register(manager, source, module)
        modules.append((source, module, contract))
    try:
        manager.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(f"plugin {manager.get_name(exc.plugin)!r}: {_one_line(exc)}") from None
    installed = [item for source, module, contract in modules for item in _registrations(manager, source, module, contract)]
    _refuse_duplicates(installed)
    return PluginSet(manager, installed)


def default_sources() -> list[PluginSource]:
    """The built-ins, then every entry point in group `keel`, by name."""
    sources = [PluginSource(name, PROJECT, lambda m=module: importlib.import_module(m)) for name, module in BUILTINS]
    for ep in sorted(importlib.metadata.entry_points(group=PROJECT), key=lambda e: e.name):
        dist = ep.dist.name if ep.dist is not None else "unknown"
        sources.append(PluginSource(ep.name, dist, ep.load))
    return sources


def _import(source: PluginSource) -> ModuleType:
    try:
        module = source.load()
    except Exception as exc:  # noqa: BLE001 - a broken plugin must not crash the host with a traceback
        raise PluginError(f"plugin {source.name!r} ({source.distribution}) failed to import: {type(exc).__name__}: {exc}") from exc
    if not isinstance(module, ModuleType):
        raise PluginError(f"plugin {source.name!r} ({source.distribution}): entry point must name a module, not {type(module).__name__}")
    return module


def _register(manager: pluggy.PluginManager, source: PluginSource, module: ModuleType) -> None:
    where = f"plugin {source.name!r} ({source.distribution})"
    if manager.has_plugin(source.name):
        raise PluginError(f"{where} is installed twice")
    if manager.is_registered(module):
        raise PluginError(f"{where}: its module {module.__name__} is already loaded as plugin {manager.get_name(module)!r}")
    try:
        manager.register(module, name=source.name)
    except pluggy.PluginValidationError as exc:  # a hookimpl takes a parameter its spec does not have
        raise PluginError(f"{where}: {_one_line(exc)}") from None
    for caller in manager.get_hookcallers(module) or ():
        for impl in caller.get_hookimpls():
            # pluggy would call an async impl and drop the coroutine: the hook would never run.
            if impl.plugin is module and (inspect.iscoroutinefunction(impl.function) or inspect.isasyncgenfunction(impl.function)):
                raise PluginError(f"{where}: hook {caller.name} must be a plain def; keel hooks are synchronous")


def _one_line(exc: Exception) -> str:
    return "; ".join(line.strip() for line in str(exc).splitlines() if line.strip())


def _major(version: str) -> int:
    major, _, minor = version.partition(".")
    # isascii: str.isdigit() also admits "²", which int() refuses.
    return int(major) if (major + minor).isascii() and major.isdigit() and minor.isdigit() else -1


def _contract(source: PluginSource, module: ModuleType) -> str:
    declared = getattr(module, "KEEL_CONTRACT", None)
    if not isinstance(declared, str) or _major(declared) < 0:
        raise PluginError(
            f"plugin {source.name!r} ({source.distribution}) declares no KEEL_CONTRACT = \"MAJOR.MINOR\""
            f" (this keel speaks contract {CONTRACT_VERSION})"
        )
    if _major(declared) != _major(CONTRACT_VERSION):
        raise PluginError(
            f"plugin {source.name!r} ({source.distribution}) was built for keel contract {declared};"
            f" this keel speaks contract {CONTRACT_VERSION}"
        )
    if _minor(declared) > _minor(CONTRACT_VERSION):
        # It may use what only a newer keel has (a field, a hook): refused now, not broken later.
        raise PluginError(
            f"plugin {source.name!r} ({source.distribution}) was built for keel contract {declared}, newer than"
            f" this keel's contract {CONTRACT_VERSION}; upgrade keel"
        )
    return declared


def _minor(version: str) -> int:
    return int(version.partition(".")[2])


def _registrations(manager: pluggy.PluginManager, source: PluginSource, module: ModuleType, contract: str) -> list[Installed]:
    found = []
    for kind, (hook_name, record_type) in _REGISTRATION_HOOKS.items():
        for impl in getattr(manager.hook, hook_name).get_hookimpls():
            if impl.plugin is not module:
                continue
            try:
                result = impl.function()
            except Exception as exc:  # noqa: BLE001 - a broken plugin must not crash the host with a traceback
                raise PluginError(
                    f"plugin {source.name!r} ({source.distribution}): {hook_name}() failed: {type(exc).__name__}: {exc}"
                ) from exc
            records = result if isinstance(result, (list, tuple)) else None
            if records is None or not all(isinstance(r, record_type) for r in records):
                raise PluginError(f"plugin {source.name!r}: {hook_name}() must return a list of {record_type.__name__}")
            found.extend(Installed(r, source.name, source.distribution, contract) for r in records)
    return found


def _refuse_duplicates(installed: list[Installed]) -> None:
    seen: dict[str, Installed] = {}
    for item in installed:
        other = seen.setdefault(item.name, item)
        if other is not item:
            raise PluginError(
                f"plugin name {item.name!r} is registered twice: as a {other.kind.value} by {other.distribution}"
                f" and as a {item.kind.value} by {item.distribution}"
            )
