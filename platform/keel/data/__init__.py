"""The data cluster: partition map, coordinator, repair, anti-entropy, HLC, store contract glue; sans-I/O objects plus their Trio runtime.

- `PartitionMap`, `Placement`, `partition_of`: which nodes hold which partition, at which epoch;
- `place`, `ready`, `ready_all`: the next map when members come and go or joiners are ready;
- `Controller`: on the core leader, when to commit the next map, and the compare-and-set that does.
"""

from keel.data.controller import Controller, ControllerConfig, ControllerOutput, Member, Proposal, ReadyReport, \
    map_txn, members_from_kvs
from keel.data.partition_map import MapError, PartitionMap, Placement, partition_of
from keel.data.placement import place, ready, ready_all, target_loads

__all__ = [
    "Controller",
    "ControllerConfig",
    "ControllerOutput",
    "MapError",
    "Member",
    "PartitionMap",
    "Placement",
    "Proposal",
    "ReadyReport",
    "map_txn",
    "members_from_kvs",
    "partition_of",
    "place",
    "ready",
    "ready_all",
    "target_loads",
]
