"""keel's last-writer-wins store: one value per key, the write with the highest timestamp wins."""

from keel_store_lww.options import LwwOptions
from keel_store_lww.plugin import VERSION
from keel_store_lww.store import LwwStore, create

__all__ = ["VERSION", "LwwOptions", "LwwStore", "create"]
