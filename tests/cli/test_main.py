"""The `keel` command's surface: help, plugins, and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.conftest import assert_one_line_error

SUBCOMMANDS = ["node", "up", "status", "plugins", "conformance", "bench"]


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_every_subcommand_has_help(keel, command: str) -> None:
    result = keel(command, "--help")
    assert result.returncode == 0, result.stderr
    assert f"keel {command}" in result.stdout


def test_keel_without_a_command_prints_help_and_fails(keel) -> None:
    result = keel()
    assert result.returncode == 2
    assert "COMMAND" in result.stderr


def test_plugins_json_lists_the_bundled_transports_with_versions(keel) -> None:
    result = keel("plugins", "--json")
    assert result.returncode == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    for name in ("memory", "tcp"):
        assert rows[name]["kind"] == "transport"
        assert rows[name]["version"]
        assert rows[name]["contract"].startswith("1.")
    assert rows["memory"]["distribution"] == "keel"
    assert rows["tcp"]["distribution"] == "keel-transport-tcp"


def test_plugins_table_names_every_plugin(keel) -> None:
    result = keel("plugins")
    assert result.returncode == 0
    assert "memory" in result.stdout and "tcp" in result.stdout


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["node"], "the following arguments are required: --config"),
        (["up", "--core", "x"], "argument --core: invalid int value: 'x'"),
        (["up", "--core", "0"], "--core: 0 is outside 1…50"),
        (["status", "--timeout", "soon"], "argument --timeout: invalid float value"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        (["bench", "wire", "--messages", "0"], "--messages: 0 is below 1"),
        (["bench", "client", "--threads", "0"], "--threads: 0 is below 1"),
    ],
)
def test_a_bad_argument_is_one_line(keel, args: list[str], words: str) -> None:
    assert_one_line_error(keel(*args), status=2, words=words)


BAD_CONFIG = """
[node]
id = "n1"
roles = ["core"]
data_dir = "data"

[network]
listen_peer = "127.0.0.1:7001"
listen_client = "127.0.0.1:7101"

[core]
peers = ["n1=127.0.0.1:7001", "n2=127.0.0.1:7002", "n3=10.0.0.1:x"]
"""


def test_a_config_with_a_wrong_field_exits_2_naming_the_field(keel, tmp_path: Path) -> None:
    path = tmp_path / "node.toml"
    path.write_text(BAD_CONFIG)
    result = keel("node", "--config", str(path))
    assert_one_line_error(result, status=2, words='config error: core.peers[2]: "n3=10.0.0.1:x": "10.0.0.1:x" is not host:port')


def test_an_unknown_transport_lists_the_installed_ones(keel, tmp_path: Path) -> None:
    path = tmp_path / "node.toml"
    path.write_text(BAD_CONFIG.replace("10.0.0.1:x", "127.0.0.1:7003") + '\n[transport]\nplugin = "udp"\n')
    result = keel("node", "--config", str(path), "--check")
    assert_one_line_error(result, status=2, words='transport.plugin: "udp" is not an installed transport plugin (installed: memory, tcp)')


def test_node_check_accepts_a_good_config(keel, tmp_path: Path) -> None:
    path = tmp_path / "node.toml"
    path.write_text(BAD_CONFIG.replace("10.0.0.1:x", "127.0.0.1:7003"))
    result = keel("node", "--config", str(path), "--check")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
    assert (tmp_path / "data").is_dir()


def test_status_without_a_cluster_file_says_so(keel, tmp_path: Path) -> None:
    result = keel("status", "--cluster", str(tmp_path / "cluster.json"))
    assert_one_line_error(result, status=2, words="cannot read")


def test_status_with_a_malformed_cluster_file_says_so(keel, tmp_path: Path) -> None:
    path = tmp_path / "cluster.json"
    path.write_text('{"format": 1, "nodes": [{"id": 1}]}')
    assert_one_line_error(keel("status", "--cluster", str(path)), status=2, words="not a keel cluster file")
