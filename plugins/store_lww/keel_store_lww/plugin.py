"""The `lww` store plugin: what keel loads through the entry point."""

from __future__ import annotations

from keel import hookimpl
from keel.contract import StorePlugin

from keel_store_lww.options import LwwOptions
from keel_store_lww.store import create

__all__ = ["KEEL_CONTRACT", "VERSION", "keel_stores"]

KEEL_CONTRACT = "1.3"  # the store contract
VERSION = "0.1.0"


@hookimpl
def keel_stores() -> list[StorePlugin]:
    return [
        StorePlugin(
            name="lww",
            version=VERSION,
            create=create,
            options=LwwOptions,
            summary="last writer wins by hybrid logical timestamp (ties by node id); deletes are tombstones",
        )
    ]
