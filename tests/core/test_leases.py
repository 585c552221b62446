"""Leases: the replicated table (which leases exist, their keys) and the leader's clock (when each runs out).

etcd's model: a lease is granted with a TTL, keys attach to it, and
revoking or expiring it deletes them. Only the leader times leases; it
proposes an expiry through the log, and a new leader restarts every clock
with a whole TTL, so a lease may outlive its TTL across a leader change but
never ends early.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keel.core.leases import MAX_TTL_S, MIN_TTL_S, LeaseClock, LeaseTable

RUNS = settings(max_examples=100, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])


# --- the table --------------------------------------------------------------------------------


def test_grants_without_an_id_get_ids_from_one_up():
    table = LeaseTable()
    assert [table.grant(10.0).id for _ in range(3)] == [1, 2, 3]
    assert len(table) == 3 and 2 in table and 4 not in table


def test_a_granted_lease_has_its_ttl_and_no_keys():
    lease = LeaseTable().grant(2.5)
    assert (lease.ttl, lease.keys) == (2.5, set())


def test_a_client_chosen_id_is_kept_and_skipped_by_later_picks():
    table = LeaseTable()
    assert table.grant(10.0, 2).id == 2
    assert [table.grant(10.0).id for _ in range(2)] == [1, 3]


def test_a_taken_id_is_refused():
    table = LeaseTable()
    table.grant(10.0, 7)
    with pytest.raises(ValueError, match="lease 7 already exists"):
        table.grant(10.0, 7)
    assert table.leases[7].ttl == 10.0


def test_a_negative_id_is_refused():
    with pytest.raises(ValueError, match="lease id -1 is negative"):
        LeaseTable().grant(10.0, -1)


@pytest.mark.parametrize("ttl", [MIN_TTL_S, 1.0, MAX_TTL_S])
def test_a_ttl_within_bounds_is_granted(ttl):
    assert LeaseTable().grant(ttl).ttl == ttl


@pytest.mark.parametrize("ttl", [0.0, -1.0, MIN_TTL_S / 2, MAX_TTL_S * 2, float("inf"), float("nan")])
def test_a_ttl_out_of_bounds_is_refused_naming_it(ttl):
    table = LeaseTable()
    with pytest.raises(ValueError, match=r"lease ttl .* s is outside"):
        table.grant(ttl)
    assert len(table) == 0 and table.next_id == 1


def test_a_refused_grant_does_not_use_up_an_id():
    table = LeaseTable()
    with pytest.raises(ValueError):
        table.grant(0.0)
    assert table.grant(1.0).id == 1


def test_revoked_ids_are_not_picked_again():
    """A late keep-alive or put naming an old lease id must not find a new lease."""
    table = LeaseTable()
    table.grant(1.0)
    table.remove(1)
    assert table.grant(1.0).id == 2


def test_remove_returns_the_lease_with_its_keys():
    table = LeaseTable()
    table.grant(1.0)
    table.attach(b"k", 0, 1)
    lease = table.remove(1)
    assert lease is not None and lease.keys == {b"k"}
    assert 1 not in table
    assert table.remove(1) is None


def test_attach_moves_a_key_between_leases():
    table = LeaseTable()
    table.grant(1.0)
    table.grant(1.0)
    table.attach(b"k", 0, 1)
    table.attach(b"k", 1, 2)
    assert (table.leases[1].keys, table.leases[2].keys) == (set(), {b"k"})
    table.attach(b"k", 2, 0)
    assert table.leases[2].keys == set()


def test_attach_to_the_same_lease_keeps_the_key():
    table = LeaseTable()
    table.grant(1.0)
    table.attach(b"k", 0, 1)
    table.attach(b"k", 1, 1)
    assert table.leases[1].keys == {b"k"}


def test_attach_ignores_leases_that_are_gone():
    table = LeaseTable()
    table.grant(1.0)
    table.attach(b"k", 9, 1)
    table.attach(b"j", 1, 9)
    assert table.leases[1].keys == {b"k"}


def test_a_loaded_dump_is_the_same_table():
    table = LeaseTable()
    table.grant(1.0, 5)
    table.grant(2.0)
    table.attach(b"b", 0, 5)
    table.attach(b"a", 0, 5)
    loaded = LeaseTable()
    loaded.load(*table.dump())
    assert loaded.dump() == table.dump() == (2, [(1, 2.0, 0, []), (5, 1.0, 0, [b"a", b"b"])])
    assert loaded.grant(1.0).id == table.grant(1.0).id == 2


@given(ids=st.lists(st.integers(1, 6), max_size=6, unique=True), keys=st.lists(st.binary(max_size=2), max_size=8))
@RUNS
def test_the_dump_does_not_depend_on_the_order_of_grants_and_attaches(ids, keys):
    """Equal tables give equal dumps (and so equal snapshot bytes), however they were built."""
    forward, backward = LeaseTable(), LeaseTable()
    for lease_id in ids:
        forward.grant(1.0, lease_id)
    for lease_id in reversed(ids):
        backward.grant(1.0, lease_id)
    if ids:
        for key in keys:
            forward.attach(key, 0, ids[0])
        for key in reversed(keys):
            backward.attach(key, 0, ids[0])
    assert forward.dump() == backward.dump()


# --- the leader's clock -------------------------------------------------------------------


def table_of(*ttls: float) -> LeaseTable:
    table = LeaseTable()
    for ttl in ttls:
        table.grant(ttl)
    return table


def test_a_new_leader_gives_every_lease_its_whole_ttl():
    """A new leader knows no clocks: starting afresh never ends a lease early."""
    clock = LeaseClock()
    clock.restart(table_of(5.0, 2.0), now=100.0)
    assert clock.deadlines == {1: 105.0, 2: 102.0}
    assert clock.expired(101.9, retry=1.0) == []
    assert clock.expired(102.0, retry=1.0) == [2]


def test_a_keep_alive_pushes_the_deadline_a_ttl_from_now():
    table = table_of(5.0)
    clock = LeaseClock()
    clock.restart(table, now=0.0)
    clock.refresh(table.leases[1], now=4.0)
    assert clock.expired(8.0, retry=1.0) == []
    assert clock.expired(9.0, retry=1.0) == [1]


def test_expired_leases_come_lowest_id_first():
    table = LeaseTable()
    for lease_id in (9, 3, 5):
        table.grant(1.0, lease_id)
    clock = LeaseClock()
    clock.restart(table, now=0.0)
    assert clock.expired(2.0, retry=1.0) == [3, 5, 9]


def test_an_expiry_is_proposed_once_until_the_retry_time():
    clock = LeaseClock()
    clock.restart(table_of(1.0), now=0.0)
    assert clock.expired(1.0, retry=0.5) == [1]
    assert clock.expired(1.4, retry=0.5) == []


def test_an_expiry_not_applied_in_time_is_proposed_again():
    """The proposal may be lost with a failed append; the lease must still end."""
    clock = LeaseClock()
    clock.restart(table_of(1.0), now=0.0)
    clock.expired(1.0, retry=0.5)
    assert clock.expired(1.5, retry=0.5) == [1]
    assert clock.expired(1.9, retry=0.5) == []


def test_a_keep_alive_after_a_proposed_expiry_clears_the_proposal():
    table = table_of(1.0)
    clock = LeaseClock()
    clock.restart(table, now=0.0)
    clock.expired(1.0, retry=10.0)
    clock.refresh(table.leases[1], now=1.2)
    assert clock.proposed == {}
    assert clock.expired(2.2, retry=10.0) == [1]


def test_a_forgotten_lease_is_never_proposed():
    clock = LeaseClock()
    clock.restart(table_of(1.0, 1.0), now=0.0)
    clock.forget(1)
    assert clock.expired(5.0, retry=1.0) == [2]


def test_a_node_that_stops_leading_proposes_nothing():
    clock = LeaseClock()
    clock.restart(table_of(1.0), now=0.0)
    clock.stop()
    assert clock.expired(100.0, retry=1.0) == []


def test_a_restart_forgets_earlier_proposals():
    table = table_of(1.0)
    clock = LeaseClock()
    clock.restart(table, now=0.0)
    clock.expired(1.0, retry=100.0)
    clock.restart(table, now=50.0)
    assert clock.expired(51.0, retry=100.0) == [1]


def test_a_lease_granted_while_leading_is_timed_from_its_grant():
    table = table_of(1.0)
    clock = LeaseClock()
    clock.restart(table, now=0.0)
    lease = table.grant(3.0)
    clock.refresh(lease, now=10.0)
    assert clock.expired(12.9, retry=1.0) == [1]
    assert clock.expired(13.0, retry=1.0) == [2]


@pytest.mark.parametrize("start", [-1000.0, -1.0, 0.0, 1e9])
def test_expiry_does_not_depend_on_where_the_clock_starts(start):
    """The driver's clock may start anywhere (a virtual clock at a negative time, say)."""
    clock = LeaseClock()
    clock.restart(table_of(1.0), now=start)
    assert clock.expired(start + 0.5, retry=1.0) == []
    assert clock.expired(start + 1.0, retry=1.0) == [1]
    assert clock.expired(start + 1.5, retry=1.0) == []
    assert clock.expired(start + 2.0, retry=1.0) == [1]
