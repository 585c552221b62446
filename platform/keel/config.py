"""A node's TOML config file, read into frozen attrs classes.

Every mistake becomes one `ConfigError` naming the dotted path of the field
(`core.peers[2]`, `timeouts.heartbeat`), the value given and the rule it
broke; the CLI prints it as one line and exits with status 2. Values are
checked against the annotations of the classes below (so a string where a
number belongs is caught before any validator runs), then against each
field's validators, then against the rules that span fields.

Plugin options (`[transport.options]` and the like) are kept as given and
built later, once the plugin is known, with `build` and the plugin's own
options class, so the errors read the same.
"""

from __future__ import annotations

import os
import tomllib
import types
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import attrs

from keel.address import Address
from keel.errors import ConfigError
from keel.wire import MAX_FRAME

__all__ = [
    "Config",
    "CorePeer",
    "CoreSection",
    "NetworkSection",
    "NodeSection",
    "PluginChoice",
    "Timeouts",
    "TlsSection",
    "build",
    "load",
    "check_environment",
]

ROLES = frozenset({"core", "data"})
MIN_FRAME = 64 * 2**10  # bytes; below this a single batch of appends would not fit
MAX_MAX_FRAME = 2**30  # bytes; the frame length field is 32 bits and memory is finite


# --- validators: each raises ValueError with a message about the value ------


def node_id(_: Any, attribute: attrs.Attribute, value: str) -> None:
    """Node ids are short words: they appear in logs, paths and messages."""
    if not value or len(value) > 64 or not all(c.isalnum() or c in "-_." for c in value):
        raise ValueError(f'"{value}" is not a node id (1–64 letters, digits, "-", "_" or ".")')


def positive(_: Any, attribute: attrs.Attribute, value: float) -> None:
    if not value > 0:
        raise ValueError(f"{value} is not above 0")


def between(low: float, high: float) -> Callable[[Any, attrs.Attribute, float], None]:
    def check(_: Any, attribute: attrs.Attribute, value: float) -> None:
        if not low <= value <= high:
            raise ValueError(f"{value} is outside {low}…{high}")

    return check


def _roles(_: Any, attribute: attrs.Attribute, value: frozenset[str]) -> None:
    if not value:
        raise ValueError('is empty; give "core", "data" or both')
    unknown = sorted(value - ROLES)
    if unknown:
        raise ValueError(f'"{unknown[0]}" is not a role (roles: core, data)')


def _plugin_name(_: Any, attribute: attrs.Attribute, value: str | None) -> None:
    if value is not None and not value:
        raise ValueError('is empty; name a plugin from "keel plugins"')


# --- the sections --------------------------------------------------------------


@attrs.frozen(kw_only=True)
class NodeSection:
    """`[node]`: who this node is."""

    id: str = attrs.field(validator=node_id)
    roles: frozenset[str] = attrs.field(validator=_roles)
    data_dir: str  # relative paths are relative to the config file's folder


@attrs.frozen(kw_only=True)
class TlsSection:
    """`[network.tls]`: PEM files; every connection is then mutual TLS."""

    cert: str
    key: str
    ca: str


@attrs.frozen(kw_only=True)
class NetworkSection:
    """`[network]`: where this node listens and what it tells others."""

    listen_peer: Address  # other nodes connect here
    listen_client: Address  # clients and `keel status` connect here
    advertise_peer: Address | None = None  # defaults to listen_peer
    advertise_client: Address | None = None  # defaults to listen_client
    max_frame: int = attrs.field(default=MAX_FRAME, validator=between(MIN_FRAME, MAX_MAX_FRAME))
    tls: TlsSection | None = None


@attrs.frozen
class CorePeer:
    """One member of the core, written `"id=host:port"` in `core.peers`."""

    id: str
    address: Address

    @classmethod
    def parse(cls, text: str) -> CorePeer:
        name, sep, address = text.partition("=")
        if not sep:
            raise ValueError(f'"{text}" is not id=host:port')
        node_id(None, None, name)  # type: ignore[arg-type]
        try:
            return cls(name, Address.parse(address))
        except ValueError as exc:
            raise ValueError(f'"{text}": {exc}') from None


@attrs.frozen(kw_only=True)
class CoreSection:
    """`[core]`: the members of the consistent core, this node included if it is one."""

    peers: tuple[CorePeer, ...] = ()
    # The core members' client addresses ("id=host:port"), where a data node
    # registers and follows the partition map; required on a data node.
    clients: tuple[CorePeer, ...] = ()


@attrs.frozen(kw_only=True)
class PluginChoice:
    """`[transport]`, `[consensus]`, `[store]`: a plugin by name, and its options."""

    plugin: str | None = attrs.field(default=None, validator=_plugin_name)
    options: tuple[tuple[str, Any], ...] = ()  # the raw [<section>.options] table, key order kept

    def options_table(self) -> dict[str, Any]:
        return dict(self.options)


@attrs.frozen(kw_only=True)
class Timeouts:
    """`[timeouts]`: every duration in seconds."""

    heartbeat: float = attrs.field(default=0.05, validator=between(0.001, 60.0))  # leader/peer heartbeat interval
    election_min: float = attrs.field(default=0.15, validator=between(0.003, 600.0))
    election_max: float = attrs.field(default=0.30, validator=between(0.003, 600.0))
    request: float = attrs.field(default=5.0, validator=positive)  # a client request's deadline
    connect: float = attrs.field(default=2.0, validator=positive)  # one dial attempt
    shutdown: float = attrs.field(default=5.0, validator=positive)  # graceful stop before giving up


@attrs.frozen(kw_only=True)
class Config:
    """One node's whole configuration."""

    node: NodeSection
    network: NetworkSection
    core: CoreSection = CoreSection()
    transport: PluginChoice = PluginChoice(plugin="tcp")
    consensus: PluginChoice = PluginChoice()
    store: PluginChoice = PluginChoice()
    timeouts: Timeouts = Timeouts()
    source: str = ""  # the file it came from, for messages; not a TOML key

    @classmethod
    def from_toml(cls, doc: Mapping[str, Any], *, base_dir: Path | None = None) -> Config:
        """Build and check a config from a parsed TOML document.

        Raises:
            ConfigError: naming the first field that breaks a rule.
        """
        config = build(cls, doc, "", exclude=("source",))
        if base_dir is not None:
            config = config._relative_to(base_dir)
        config.check()
        return config

    def _relative_to(self, base: Path) -> Config:
        """Relative paths in the file are relative to the file's folder."""
        node = attrs.evolve(self.node, data_dir=str(base / self.node.data_dir))
        tls = self.network.tls
        if tls is not None:
            tls = TlsSection(cert=str(base / tls.cert), key=str(base / tls.key), ca=str(base / tls.ca))
        return attrs.evolve(self, node=node, network=attrs.evolve(self.network, tls=tls))

    def check(self) -> None:
        """Rules that span fields.

        Raises:
            ConfigError: naming the field to change.
        """
        t = self.timeouts
        if t.election_min < round(3 * t.heartbeat, 9):
            raise ConfigError(
                "timeouts.election_min",
                f"{t.election_min} is below 3 × timeouts.heartbeat ({t.heartbeat}); a follower would start elections between heartbeats",
            )
        if t.election_max <= t.election_min:
            raise ConfigError("timeouts.election_max", f"{t.election_max} is not above timeouts.election_min ({t.election_min})")
        ids: dict[str, int] = {}
        addresses: dict[Address, int] = {}
        for i, peer in enumerate(self.core.peers):
            if peer.id in ids:
                raise ConfigError(f"core.peers[{i}]", f'node id "{peer.id}" is already core.peers[{ids[peer.id]}]')
            if peer.address in addresses:
                raise ConfigError(f"core.peers[{i}]", f"address {peer.address} is already core.peers[{addresses[peer.address]}]")
            ids[peer.id] = i
            addresses[peer.address] = i
        if "core" in self.node.roles and self.core.peers and self.node.id not in ids:
            raise ConfigError("core.peers", f'does not list this core node "{self.node.id}"')
        mine = ids.get(self.node.id)
        if mine is not None and self.core.peers[mine].address not in (self.peer_address, self.network.listen_peer):
            raise ConfigError(
                f"core.peers[{mine}]",
                f"this node's address {self.core.peers[mine].address} is not its network peer address {self.peer_address}",
            )
        if not self.core.peers:
            raise ConfigError("core.peers", "is empty; list every core member as \"id=host:port\"")
        for i, client in enumerate(self.core.clients):
            if client.id not in ids:
                raise ConfigError(f"core.clients[{i}]", f'node id "{client.id}" is not in core.peers')
        if "data" in self.node.roles and not self.core.clients:
            raise ConfigError("core.clients", "is empty; a data node reaches the core at its members' client "
                                              "addresses, listed as \"id=host:port\"")
        for section in ("transport", "consensus", "store"):
            choice = getattr(self, section)
            if choice.plugin is None and choice.options:
                raise ConfigError(f"{section}.options", f"given, but {section}.plugin is not set")
        net = self.network
        for name in ("peer", "client"):
            if getattr(net, f"advertise_{name}") is None and getattr(net, f"listen_{name}").host in ("0.0.0.0", "::"):
                raise ConfigError(
                    f"network.advertise_{name}",
                    f"is required when network.listen_{name} is the wildcard {getattr(net, f'listen_{name}')}",
                )
        if net.listen_peer == net.listen_client and net.listen_peer.port != 0:
            raise ConfigError("network.listen_client", f"{net.listen_client} is also network.listen_peer")

    @property
    def peer_address(self) -> Address:
        """The address other nodes dial."""
        return self.network.advertise_peer or self.network.listen_peer

    @property
    def client_address(self) -> Address:
        """The address clients connect to."""
        return self.network.advertise_client or self.network.listen_client

    def peers(self) -> tuple[tuple[str, Address], ...]:
        """The nodes this node keeps links to: every core member but itself."""
        return tuple((p.id, p.address) for p in self.core.peers if p.id != self.node.id)


def load(path: str | os.PathLike[str]) -> Config:
    """Read, parse and check a node's config file.

    Raises:
        ConfigError: the file is missing or unreadable, not TOML, or breaks a rule.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError("", f"{path}: cannot read ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise ConfigError("", f"{path}: not UTF-8 text") from None
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("", f"{path}: not valid TOML: {exc}") from None
    config = Config.from_toml(doc, base_dir=path.resolve().parent)
    return attrs.evolve(config, source=str(path))


def check_environment(config: Config) -> Path:
    """Check what the config names on this machine; create the data directory.

    Returns the data directory.

    Raises:
        ConfigError: `node.data_dir` cannot be created or written, or a TLS
            file cannot be read.
    """
    path = Path(config.node.data_dir)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError("node.data_dir", f'"{path}": cannot create ({exc.strerror or exc})') from None
    if not path.is_dir():
        raise ConfigError("node.data_dir", f'"{path}": not a directory')
    if not os.access(path, os.W_OK | os.X_OK):
        raise ConfigError("node.data_dir", f'"{path}": permission denied (this process cannot write there)')
    tls = config.network.tls
    for name in ("cert", "key", "ca") if tls is not None else ():
        file = Path(getattr(tls, name))
        if not (file.is_file() and os.access(file, os.R_OK)):
            raise ConfigError(f"network.tls.{name}", f'"{file}": not a readable file')
    return path


# --- building attrs classes from TOML tables, with field paths ----------------


def build(cls: type, table: Any, path: str, *, exclude: tuple[str, ...] = ()) -> Any:
    """Build attrs class `cls` from a TOML table found at `path`.

    Unknown keys, missing required keys, values of the wrong type and values
    a validator refuses all raise `ConfigError` naming the key's full path.
    Plugin authors use this, through the host, for their options classes.
    """
    if not isinstance(table, dict):
        raise ConfigError(path, f"expected a table, got {_toml_type(table)}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in attrs.fields(cls) if f.init and f.name not in exclude}
    for key in table:
        if key not in fields:
            known = ", ".join(sorted(fields)) or "none"
            raise ConfigError(_join(path, key), f"unknown key (known keys here: {known})")
    values = {}
    for name, field in fields.items():
        if name in table:
            values[name] = _convert(table[name], hints[name], _join(path, name))
        elif field.default is attrs.NOTHING:
            raise ConfigError(_join(path, name), "missing (required)")
    # Build first with validators off, then run each field's validators on the
    # built object: a cross-field validator (`@x.validator`) sees the other
    # fields, and a refusal is still blamed on the field it belongs to.
    try:
        with attrs.validators.disabled():
            built = cls(**values)
    except (ValueError, TypeError) as exc:  # __attrs_post_init__ refused the whole
        raise ConfigError(path, str(exc)) from None
    for name, field in fields.items():
        if field.validator is not None:
            try:
                field.validator(built, field, getattr(built, name))
            except (ValueError, TypeError) as exc:
                raise ConfigError(_join(path, name), str(exc)) from None
    return built


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


_TOML_TYPES = {bool: "a boolean", int: "an integer", float: "a number", str: "a string", dict: "a table", list: "an array"}


def _toml_type(value: Any) -> str:
    return _TOML_TYPES.get(type(value), type(value).__name__)


def _show(value: Any) -> str:
    return f'"{value}"' if isinstance(value, str) else repr(value)


def _convert(value: Any, annotation: Any, where: str) -> Any:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        return _convert(value, inner[0], where)  # TOML has no null: a present key is the non-None arm
    if annotation is Any:
        return value
    if annotation is bool or annotation is str:
        if type(value) is not annotation:
            raise ConfigError(where, f"{_show(value)} is {_toml_type(value)}, expected {_TOML_TYPES[annotation]}")
        return value
    if annotation is int:
        if type(value) is not int:
            raise ConfigError(where, f"{_show(value)} is {_toml_type(value)}, expected an integer")
        return value
    if annotation is float:
        if type(value) not in (int, float):
            raise ConfigError(where, f"{_show(value)} is {_toml_type(value)}, expected a number")
        return float(value)
    if annotation is Address or annotation is CorePeer:
        if type(value) is not str:
            raise ConfigError(where, f"{_show(value)} is {_toml_type(value)}, expected a string")
        try:
            return annotation.parse(value)
        except ValueError as exc:
            raise ConfigError(where, str(exc)) from None
    if origin is tuple and annotation == tuple[tuple[str, Any], ...]:  # a raw options table
        if type(value) is not dict:
            raise ConfigError(where, f"{_show(value)} is {_toml_type(value)}, expected a table")
        return tuple(value.items())
    if origin in (tuple, frozenset) and args and (origin is frozenset or args[-1] is Ellipsis):
        if type(value) is not list:
            raise ConfigError(where, f"{_show(value)} is {_toml_type(value)}, expected an array")
        items = [_convert(v, args[0], f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else frozenset(items)
    if isinstance(annotation, type) and attrs.has(annotation):
        return build(annotation, value, where)
    raise TypeError(f"{where}: config fields of type {annotation!r} are not supported")
