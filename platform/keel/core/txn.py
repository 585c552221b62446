"""Transactions: compares, and the checks a transaction passes before anything changes.

A `Txn` either runs whole or not at all, so everything that could refuse
one of its operations is checked first (`check_ops`): unknown operation
types, a key written twice, a lease that does not exist. Only then do its
operations run, in order, at one revision.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from keel.core.api import Compare, Delete, KeyValue, Put, Range
from keel.core.api.system import RESERVED_PREFIX, reserved
from keel.core.store import prefix_end
from keel.errors import KeelError, LeaseExpired, ReservedKey

__all__ = ["TARGETS", "check_ops", "holds"]

TARGETS = ("value", "version", "create", "mod", "lease")
_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    ">": lambda a, b: a > b,
}


def holds(compare: Compare, kv: KeyValue | None) -> bool:
    """Whether `compare` holds for the key as it is (`kv`, None when absent).

    Raises:
        KeelError: an unknown target or operator.
    """
    if compare.target not in TARGETS:
        raise KeelError(f"txn compare: target {compare.target!r} is not one of {', '.join(TARGETS)}")
    test = _OPS.get(compare.op)
    if test is None:
        raise KeelError(f"txn compare: operator {compare.op!r} is not one of {', '.join(_OPS)}")
    if compare.target == "value":
        if kv is None:
            return False  # as in etcd: a value compare on an absent key fails, whatever the operator
        return test(kv.value, compare.value)
    number = {
        "version": kv.version if kv else 0,
        "create": kv.create_revision if kv else 0,
        "mod": kv.mod_revision if kv else 0,
        "lease": kv.lease if kv else 0,
    }[compare.target]
    return test(number, compare.number)


def check_ops(ops: Iterable[Any], lease_exists: Callable[[int], bool]) -> None:
    """Refuse a list of txn operations before any runs.

    Raises:
        KeelError: an operation that is not Put, Delete or Range, or two
            writes to one key (a put twice, or a put inside a deleted range).
        LeaseExpired: a put names a lease that does not exist.
    """
    puts: set[bytes] = set()
    deletes: list[Delete] = []
    for op in ops:
        if isinstance(op, (Put, Delete)) and reserved(op.key, prefix=isinstance(op, Delete) and op.prefix):
            raise ReservedKey(f"txn: {type(op).__name__.lower()} {op.key!r}: keys under "
                              f"{RESERVED_PREFIX.decode()} are keel's own; clients may read and watch them")
        if isinstance(op, Put):
            if op.key in puts:
                raise KeelError(f"txn: key {op.key!r} is written twice in one transaction")
            if op.lease and not lease_exists(op.lease):
                raise LeaseExpired(f"put {op.key!r}: lease {op.lease} does not exist (expired or revoked)")
            puts.add(op.key)
        elif isinstance(op, Delete):
            deletes.append(op)
        elif not isinstance(op, Range):
            raise KeelError(f"txn: {type(op).__name__} cannot run inside a transaction (only put, delete, range)")
    for op in deletes:
        for key in sorted(puts):  # sorted: the error names the same key on every node, whatever the hash seed
            if _covers(op, key):
                raise KeelError(f"txn: key {key!r} is both put and deleted in one transaction")


def _covers(op: Delete, key: bytes) -> bool:
    if not op.prefix:
        return key == op.key
    end = prefix_end(op.key)
    return key >= op.key and (end is None or key < end)
