"""The data cluster: sans-I/O objects, and the Trio runtime that drives them.

- `partition_map`: `PartitionMap`, `Placement`, `partition_of`: which nodes hold which partition, at which epoch;
- `placement`: `place`, `ready`, `ready_all`: the next map when members come and go or joiners are ready;
- `controller`: `Controller`: on the core leader, when to commit the next map;
- `store`: the store contract; `hlc`: hybrid logical clocks; `bucket`: `BucketSpec`;
- `server`: `DataServer`, one data node's logic; `runtime`: `DataRuntime`, its Trio driver;
- `records`, `group_commit`: the sqlite record file; `merkle`, `tree_sync`: anti-entropy.

Import the modules themselves: the package imports nothing, so the core
(which runs the controller) and the data modules can use each other.
"""
