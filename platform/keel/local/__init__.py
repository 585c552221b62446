"""A local cluster of separate node processes on 127.0.0.1 (`keel up`)."""

from keel.local.cluster_file import ClusterFile, ClusterNode
from keel.local.supervisor import Supervisor, node_command
from keel.local.topology import NodePlan, free_ports, plan, write_config

__all__ = ["ClusterFile", "ClusterNode", "NodePlan", "Supervisor", "free_ports", "node_command", "plan", "write_config"]
