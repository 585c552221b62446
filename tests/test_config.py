"""A node's config file: what it accepts, and the one line it gives for each mistake."""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path

import attrs
import pytest

from keel import config as keel_config
from keel.address import Address
from keel.errors import ConfigError

DOCS = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"

VALID = """
[node]
id = "n1"
roles = ["core"]
data_dir = "data"

[network]
listen_peer = "127.0.0.1:7001"
listen_client = "127.0.0.1:7101"

[core]
peers = ["n1=127.0.0.1:7001", "n2=127.0.0.1:7002", "n3=127.0.0.1:7003"]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "node.toml"
    path.write_text(text)
    return path


def test_minimal_config_gets_defaults_and_resolves_data_dir_next_to_the_file(tmp_path: Path) -> None:
    config = keel_config.load(write(tmp_path, VALID))
    assert config.node.id == "n1"
    assert config.node.roles == frozenset({"core"})
    assert config.node.data_dir == str(tmp_path / "data")
    assert config.transport.plugin == "tcp"
    assert config.timeouts.heartbeat == 0.05
    assert config.network.max_frame == 16 * 2**20
    assert config.peer_address == Address("127.0.0.1", 7001)
    assert config.peers() == (("n2", Address("127.0.0.1", 7002)), ("n3", Address("127.0.0.1", 7003)))


def test_the_documented_example_is_a_valid_config() -> None:
    text = DOCS.read_text()
    example = re.search(r"## A complete example\s+```toml\n(.*?)```", text, re.S)
    assert example, "docs/configuration.md lost its complete example"
    config = keel_config.Config.from_toml(tomllib.loads(example.group(1)))
    assert config.network.advertise_peer == Address("10.0.0.1", 7001)
    assert config.network.tls is not None


def test_every_documented_key_exists_and_every_key_is_documented() -> None:
    text = DOCS.read_text()
    documented = set(re.findall(r"^\| `([a-z_]+)` \|", text, re.M))

    sections = [keel_config.NodeSection, keel_config.NetworkSection, keel_config.TlsSection,
                keel_config.CoreSection, keel_config.PluginChoice, keel_config.Timeouts]
    tables = {f.name for cls in sections for f in attrs.fields(cls) if f.name == "tls"}
    keys = {f.name for cls in sections for f in attrs.fields(cls)} - tables
    assert keys <= documented, f"undocumented keys: {sorted(keys - documented)}"
    assert all(f".{name}]`" in text for name in tables)


MISTAKES = [
    # (what to change, expected field path, words the message must contain)
    (VALID.replace('"n3=127.0.0.1:7003"', '"n3=10.0.0.1:x"'), "core.peers[2]", '"10.0.0.1:x" is not host:port'),
    (VALID.replace('"n3=127.0.0.1:7003"', '"127.0.0.1:7003"'), "core.peers[2]", "is not id=host:port"),
    (VALID.replace('"n3=127.0.0.1:7003"', '"n1=127.0.0.1:7003"'), "core.peers[2]", 'node id "n1" is already core.peers[0]'),
    (VALID.replace('"n3=127.0.0.1:7003"', '"n3=127.0.0.1:7002"'), "core.peers[2]", "address 127.0.0.1:7002 is already core.peers[1]"),
    (VALID.replace('"n1=127.0.0.1:7001", ', ""), "core.peers", 'does not list this core node "n1"'),
    (VALID.replace('"n1=127.0.0.1:7001"', '"n1=127.0.0.1:7009"'), "core.peers[0]", "is not its network peer address"),
    (VALID.replace('roles = ["core"]', 'roles = ["core", "witness"]'), "node.roles", '"witness" is not a role'),
    (VALID.replace('roles = ["core"]', "roles = []"), "node.roles", "is empty"),
    (VALID.replace('roles = ["core"]', 'roles = "core"'), "node.roles", "expected an array"),
    (VALID.replace('id = "n1"', 'id = "n 1"'), "node.id", "is not a node id"),
    (VALID.replace('id = "n1"', "id = 1"), "node.id", "is an integer, expected a string"),
    (VALID.replace('data_dir = "data"', ""), "node.data_dir", "missing (required)"),
    (VALID + '\n[node.extra]\nx = 1\n', "node.extra", "unknown key"),
    (VALID.replace("[core]", "[cores]"), "cores", "unknown key"),
    (VALID.replace('listen_peer = "127.0.0.1:7001"', 'listen_peer = "127.0.0.1"'), "network.listen_peer", "is not host:port"),
    (VALID.replace('listen_peer = "127.0.0.1:7001"', 'listen_peer = "127.0.0.1:70000"'), "network.listen_peer", "above 65535"),
    (VALID.replace('listen_client = "127.0.0.1:7101"', 'listen_client = "127.0.0.1:7001"'), "network.listen_client", "is also network.listen_peer"),
    (VALID.replace("127.0.0.1:7101", "0.0.0.0:7101"), "network.advertise_client", "is required"),
    (VALID + "max_frame = 10\n", "core.max_frame", "unknown key"),
    (VALID.replace("[core]", "[network.tls]\ncert = 'a'\n\n[core]"), "network.tls.key", "missing (required)"),
    (VALID + "\n[timeouts]\nheartbeat = \"fast\"\n", "timeouts.heartbeat", '"fast" is a string, expected a number'),
    (VALID + "\n[timeouts]\nheartbeat = 0.1\n", "timeouts.election_min", "is below 3 × timeouts.heartbeat (0.1)"),
    (VALID + "\n[timeouts]\nelection_max = 0.1\n", "timeouts.election_max", "is not above timeouts.election_min"),
    (VALID + "\n[timeouts]\nrequest = -1\n", "timeouts.request", "-1.0 is not above 0"),
    (VALID + "\n[timeouts]\nheartbeat = true\n", "timeouts.heartbeat", "is a boolean, expected a number"),
    (VALID + "\n[consensus]\noptions = {a = 1}\n", "consensus.options", "consensus.plugin is not set"),
    (VALID + '\n[transport]\nplugin = ""\n', "transport.plugin", "is empty"),
]


@pytest.mark.parametrize(("text", "field", "words"), MISTAKES, ids=[m[1] + ":" + m[2][:24] for m in MISTAKES])
def test_a_mistake_names_its_field_in_one_line(tmp_path: Path, text: str, field: str, words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        keel_config.load(write(tmp_path, text))
    assert caught.value.path == field
    assert words in str(caught.value)
    assert "\n" not in str(caught.value)


def test_invalid_toml_names_the_file_and_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, VALID + "\nthis is not toml\n")
    with pytest.raises(ConfigError, match=r"node\.toml: not valid TOML: .*line 14"):
        keel_config.load(path)


def test_a_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        keel_config.load(tmp_path / "absent.toml")


def test_data_dir_is_created_when_missing(tmp_path: Path) -> None:
    config = keel_config.load(write(tmp_path, VALID.replace('"data"', '"deep/er/data"')))
    assert keel_config.check_environment(config) == tmp_path / "deep" / "er" / "data"
    assert (tmp_path / "deep" / "er" / "data").is_dir()


def test_a_data_dir_that_cannot_be_created_names_the_field(tmp_path: Path) -> None:
    (tmp_path / "blocker").write_text("a file where a folder should be")
    config = keel_config.load(write(tmp_path, VALID.replace('"data"', '"blocker/data"')))
    with pytest.raises(ConfigError) as caught:
        keel_config.check_environment(config)
    assert caught.value.path == "node.data_dir"
    assert "cannot create" in str(caught.value)


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write any folder, so a permission check cannot fail as root")
def test_a_data_dir_without_write_permission_names_the_field(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    config = keel_config.load(write(tmp_path, VALID.replace('"data"', '"locked"')))
    with pytest.raises(ConfigError, match="permission denied") as caught:
        keel_config.check_environment(config)
    assert caught.value.path == "node.data_dir"


def test_missing_tls_files_name_the_field(tmp_path: Path) -> None:
    text = VALID.replace("[core]", "[network.tls]\ncert = 'c.pem'\nkey = 'k.pem'\nca = 'ca.pem'\n\n[core]")
    (tmp_path / "c.pem").write_text("not checked for content here")
    config = keel_config.load(write(tmp_path, text))
    assert config.network.tls is not None and config.network.tls.cert == str(tmp_path / "c.pem")
    with pytest.raises(ConfigError) as caught:
        keel_config.check_environment(config)
    assert caught.value.path == "network.tls.key"


def test_plugin_options_are_kept_for_the_plugin_to_check(tmp_path: Path) -> None:
    config = keel_config.load(write(tmp_path, VALID + "\n[transport]\nplugin = 'memory'\n[transport.options]\nnetwork = 'x'\n"))
    assert config.transport.plugin == "memory"
    assert config.transport.options_table() == {"network": "x"}


def test_build_reports_the_plugin_option_path() -> None:
    from keel.transport.memory import MemoryOptions

    with pytest.raises(ConfigError) as caught:
        keel_config.build(MemoryOptions, {"network": 3}, "transport.options")
    assert caught.value.path == "transport.options.network"
    with pytest.raises(ConfigError) as caught:
        keel_config.build(MemoryOptions, {"netwrok": "a"}, "transport.options")
    assert caught.value.path == "transport.options.netwrok"
    assert "known keys here: network" in str(caught.value)


@attrs.frozen(kw_only=True)
class _Window:
    """An options class whose rule spans two fields, written as attrs recommends."""

    low: int = 1
    high: int = attrs.field(default=2)

    @high.validator
    def _above_low(self, attribute: attrs.Attribute, value: int) -> None:
        if value <= self.low:
            raise ValueError(f"{value} is not above low ({self.low})")


def test_a_cross_field_validator_is_blamed_on_its_field() -> None:
    assert keel_config.build(_Window, {"low": 3, "high": 4}, "store.options") == _Window(low=3, high=4)
    with pytest.raises(ConfigError) as caught:
        keel_config.build(_Window, {"low": 3}, "store.options")
    assert caught.value.path == "store.options.high"
    assert "2 is not above low (3)" in str(caught.value)
