"""`keel bench`: measurements that `make bench` prints and records in docs/benchmarks.md."""

from keel.bench.client import ClientBench, bench_client
from keel.bench.core import CoreBench, bench_core
from keel.bench.data import DataBench, bench_data
from keel.bench.report import machine, write_docs
from keel.bench.transport import bench_transport
from keel.bench.wire import bench_wire

__all__ = ["ClientBench", "CoreBench", "DataBench", "bench_client", "bench_core", "bench_data", "bench_transport",
           "bench_wire", "machine", "write_docs"]
