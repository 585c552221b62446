"""The plugin loader: contract versions, hook validation, duplicate names, config lookups.

Plugins here are `types.ModuleType` objects built in the test, handed to
`keel.plugins.load` as `PluginSource`s, so each case is one module away from
the loader's real input.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any

import pytest

from keel import CONTRACT_VERSION, hookimpl
from keel.address import Address
from keel.contract import ConsensusPlugin, Kind, NodeInfo, StorePlugin, TransportPlugin
from keel.errors import ConfigError, PluginError
from keel.plugins import BUILTINS, PluginSource, default_sources, load

MAJOR = int(CONTRACT_VERSION.split(".")[0])


def plugin_module(name: str = "fake", *, contract: object = CONTRACT_VERSION, **hooks: Callable[..., Any]) -> types.ModuleType:
    """A plugin module: `KEEL_CONTRACT` (unless None) and one hookimpl per keyword."""
    module = types.ModuleType(f"fake_{name}")
    if contract is not None:
        module.KEEL_CONTRACT = contract
    for hook_name, function in hooks.items():
        setattr(module, hook_name, hookimpl(function))
    return module


def source(module: types.ModuleType, name: str = "fake", distribution: str = "fake-dist") -> PluginSource:
    return PluginSource(name, distribution, lambda: module)


def transport(name: str) -> TransportPlugin:
    return TransportPlugin(name=name, version="0.1", create=lambda settings: None, connect=lambda a, s: None)


def store(name: str) -> StorePlugin:
    return StorePlugin(name=name, version="0.1", create=lambda settings: None)


def engine(name: str) -> ConsensusPlugin:
    return ConsensusPlugin(name=name, version="0.1", create=lambda settings, rng: None)


def node_info() -> NodeInfo:
    address = Address("127.0.0.1", 7000)
    return NodeInfo(node_id="n1", roles=frozenset({"core"}), peer_address=address, client_address=address, data_dir="data")


# --- loading ------------------------------------------------------------------


def test_the_builtin_memory_transport_is_always_loaded() -> None:
    plugins = load()
    assert "memory" in plugins.names(Kind.TRANSPORT)
    memory = plugins.get(Kind.TRANSPORT, "memory", field="transport.kind")
    assert isinstance(memory, TransportPlugin)
    assert [i.distribution for i in plugins.installed if i.name == "memory"] == ["keel"]


def test_default_sources_put_the_builtins_first() -> None:
    names = [s.name for s in default_sources()]
    assert names[: len(BUILTINS)] == [name for name, _ in BUILTINS]


def test_a_plugin_registers_every_kind_under_its_names() -> None:
    module = plugin_module(
        keel_transports=lambda: [transport("pigeon")],
        keel_stores=lambda: (store("ledger"),),
        keel_consensus_engines=lambda: [engine("vote"), engine("lottery")],
    )
    plugins = load([source(module)])
    assert plugins.names(Kind.TRANSPORT) == ("pigeon",)
    assert plugins.names(Kind.STORE) == ("ledger",)
    assert plugins.names(Kind.CONSENSUS) == ("lottery", "vote")
    row = next(i for i in plugins.installed if i.name == "ledger").describe()
    assert row == {"name": "ledger", "kind": "store", "version": "0.1", "distribution": "fake-dist",
                   "contract": CONTRACT_VERSION, "summary": ""}


def test_observation_hooks_reach_every_plugin() -> None:
    seen: list[tuple[str, str, str, int]] = []
    first = plugin_module("a", keel_role_changed=lambda node, role, term: seen.append(("a", node.node_id, role, term)))
    # An implementation may take fewer parameters than its spec.
    second = plugin_module("b", keel_role_changed=lambda role: seen.append(("b", "", role, 0)))
    plugins = load([source(first, "a"), source(second, "b")])
    plugins.hook.keel_role_changed(node=node_info(), role="leader", term=4)
    assert sorted(seen) == [("a", "n1", "leader", 4), ("b", "", "leader", 0)]


# --- contract versions --------------------------------------------------------


@pytest.mark.parametrize("declared", [f"{MAJOR + 1}.0", f"{MAJOR - 1}.9", f"{MAJOR + 10}.{3}"])
def test_a_plugin_for_another_major_version_is_refused_naming_it_and_both_versions(declared: str) -> None:
    with pytest.raises(PluginError) as caught:
        load([source(plugin_module(contract=declared), "oldie", "oldie-dist")])
    message = str(caught.value)
    assert "'oldie'" in message and "oldie-dist" in message
    assert f"contract {declared};" in message
    assert f"speaks contract {CONTRACT_VERSION}" in message


MINOR = int(CONTRACT_VERSION.split(".")[1])


@pytest.mark.parametrize("declared", sorted({f"{MAJOR}.0", CONTRACT_VERSION}))
def test_a_plugin_for_this_or_an_older_minor_version_is_accepted(declared: str) -> None:
    plugins = load([source(plugin_module(contract=declared, keel_stores=lambda: [store("minor")]))])
    assert [i.contract for i in plugins.installed] == [declared]


@pytest.mark.parametrize("declared", [f"{MAJOR}.{MINOR + 1}", f"{MAJOR}.99"])
def test_a_plugin_for_a_newer_minor_version_is_refused_asking_for_an_upgrade(declared: str) -> None:
    """It may rely on a field or hook this keel lacks; refused at load time, not broken at run time."""
    with pytest.raises(PluginError, match=rf"built for keel contract {declared}, newer than this keel's contract "
                                         rf"{CONTRACT_VERSION}; upgrade keel"):
        load([source(plugin_module(contract=declared, keel_stores=lambda: [store("minor")]))])


@pytest.mark.parametrize("declared", [None, 1.0, 1, "1", "one.two", "", "1.0.1", "v1.0", "².0", "1.²"], ids=repr)
def test_a_plugin_without_a_major_minor_contract_is_refused(declared: object) -> None:
    with pytest.raises(PluginError, match=r"plugin 'fake' \(fake-dist\) declares no KEEL_CONTRACT") as caught:
        load([source(plugin_module(contract=declared))])
    assert f"speaks contract {CONTRACT_VERSION}" in str(caught.value)


# --- hook validation ----------------------------------------------------------


def test_a_misspelled_hook_fails_loudly() -> None:
    module = plugin_module(keel_transport=lambda: [transport("typo")])
    with pytest.raises(PluginError, match=r"plugin 'fake': unknown hook 'keel_transport'"):
        load([source(module)])


def test_a_hook_taking_a_parameter_its_spec_lacks_is_refused() -> None:
    module = plugin_module(keel_node_started=lambda node, mood: None)
    with pytest.raises(PluginError, match=r"plugin 'fake' \(fake-dist\):.*mood") as caught:
        load([source(module)])
    assert "\n" not in str(caught.value)


def test_an_async_hook_is_refused() -> None:
    async def keel_node_started(node: NodeInfo) -> None:
        pass

    with pytest.raises(PluginError, match=r"plugin 'fake' \(fake-dist\): hook keel_node_started must be a plain def"):
        load([source(plugin_module(keel_node_started=keel_node_started))])


@pytest.mark.parametrize(
    "returned",
    [None, transport("solo"), {"name": "x"}, ["memory"], [transport("ok"), store("wrong-hook")], [engine("wrong-kind")]],
    ids=["None", "a bare record", "a dict", "a string", "a mixed list", "another kind"],
)
def test_a_registration_hook_returning_anything_but_its_records_is_refused(returned: object) -> None:
    module = plugin_module(keel_transports=lambda: returned)
    with pytest.raises(PluginError, match=r"plugin 'fake': keel_transports\(\) must return a list of TransportPlugin"):
        load([source(module)])


def test_a_registration_hook_that_raises_becomes_a_plugin_error() -> None:
    def keel_stores() -> list[StorePlugin]:
        raise KeyError("settings")

    with pytest.raises(PluginError, match=r"plugin 'fake' \(fake-dist\): keel_stores\(\) failed: KeyError") as caught:
        load([source(plugin_module(keel_stores=keel_stores))])
    assert isinstance(caught.value.__cause__, KeyError)


# --- import failures and duplicates ---------------------------------------------


def test_a_plugin_that_fails_to_import_becomes_a_plugin_error_naming_it() -> None:
    def broken() -> types.ModuleType:
        raise ModuleNotFoundError("No module named 'numpy'")

    with pytest.raises(PluginError, match=r"plugin 'heavy' \(heavy-dist\) failed to import: ModuleNotFoundError") as caught:
        load([PluginSource("heavy", "heavy-dist", broken)])
    assert isinstance(caught.value.__cause__, ModuleNotFoundError)


def test_an_entry_point_naming_something_other_than_a_module_is_refused() -> None:
    with pytest.raises(PluginError, match=r"plugin 'fn' \(fn-dist\): entry point must name a module, not function"):
        load([PluginSource("fn", "fn-dist", lambda: transport)])


def test_two_plugins_registering_one_name_are_refused_naming_both_distributions() -> None:
    first = plugin_module("a", keel_transports=lambda: [transport("shared")])
    second = plugin_module("b", keel_stores=lambda: [store("shared")])
    with pytest.raises(PluginError, match="plugin name 'shared' is registered twice") as caught:
        load([source(first, "a", "dist-a"), source(second, "b", "dist-b")])
    assert "transport by dist-a" in str(caught.value)
    assert "store by dist-b" in str(caught.value)


def test_a_plugin_clashing_with_a_builtin_name_is_refused() -> None:
    builtins = [s for s in default_sources() if s.distribution == "keel"]
    sources = [*builtins, source(plugin_module(keel_transports=lambda: [transport("memory")]))]
    with pytest.raises(PluginError, match="plugin name 'memory' is registered twice"):
        load(sources)


def test_one_plugin_name_installed_twice_is_refused() -> None:
    with pytest.raises(PluginError, match=r"plugin 'twin' \(dist-b\) is installed twice"):
        load([source(plugin_module("a"), "twin", "dist-a"), source(plugin_module("b"), "twin", "dist-b")])


def test_one_module_under_two_plugin_names_is_refused() -> None:
    module = plugin_module("shared")
    with pytest.raises(PluginError, match=r"plugin 'second' \(dist\): its module fake_shared is already loaded as plugin 'first'"):
        load([source(module, "first", "dist"), source(module, "second", "dist")])


# --- lookups by config --------------------------------------------------------


def test_an_unknown_plugin_name_in_config_lists_the_installed_names() -> None:
    module = plugin_module(keel_transports=lambda: [transport("pigeon"), transport("carrier")])
    plugins = load([source(module)])
    with pytest.raises(ConfigError) as caught:
        plugins.get(Kind.TRANSPORT, "tpc", field="transport.kind")
    assert caught.value.path == "transport.kind"
    assert str(caught.value) == 'transport.kind: "tpc" is not an installed transport plugin (installed: carrier, pigeon)'


def test_a_name_of_another_kind_is_not_found() -> None:
    plugins = load([source(plugin_module(keel_stores=lambda: [store("ledger")]))])
    with pytest.raises(ConfigError, match=r"\"ledger\" is not an installed consensus plugin \(installed: none\)"):
        plugins.get(Kind.CONSENSUS, "ledger", field="core.consensus")
