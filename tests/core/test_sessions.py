"""The session table: the Idempotent Receiver (Raft thesis §6.3), bounded and deterministic.

A retried (client, seq) finds its first answer until the client
acknowledges it; sessions expire by log time (the leader's clock stamped
on commands), never by a node's own clock, and beyond the bounds the least
recently used session goes; a request more than the window above its acked
is refused. Whatever was forgotten is refused, never applied again as if new.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keel.core.sessions import SessionTable
from keel.errors import KeelError, SessionExpired

RUNS = settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])


def answered(table: SessionTable, client: str, seq: int, answer: object, *, acked: int = 0, at: float = 0.0) -> None:
    """(client, seq) arrives for the first time and is answered."""
    assert table.lookup(client, seq, acked, at) == (False, None)
    table.record(client, seq, answer)


def test_a_first_request_is_not_seen():
    assert SessionTable().lookup("c", 1, 0, 0.0) == (False, None)


def test_a_retried_request_finds_its_first_answer():
    """Raft thesis §6.3: a duplicate gets the saved response and is not executed again."""
    table = SessionTable()
    answered(table, "c", 1, "first")
    answered(table, "c", 2, "second")
    assert table.lookup("c", 1, 0, 0.0) == (True, "first")
    assert table.lookup("c", 2, 0, 0.0) == (True, "second")


def test_sessions_of_different_clients_are_apart():
    table = SessionTable()
    answered(table, "alice", 1, "a1")
    assert table.lookup("bob", 1, 0, 0.0) == (False, None)


def test_acked_forgets_the_answers_at_or_below_it():
    table = SessionTable()
    for seq in (1, 2, 3):
        answered(table, "c", seq, seq)
    assert table.lookup("c", 4, 2, 0.0) == (False, None)
    assert table.dump()[1][0][3] == [(3, 3)]


def test_a_retry_of_an_acknowledged_request_is_refused():
    """The client promised not to retry it; its answer is gone, so it cannot be told apart from a new one."""
    table = SessionTable()
    answered(table, "c", 1, "one")
    answered(table, "c", 2, "two", acked=1)
    with pytest.raises(SessionExpired, match=r"session c: request 1 is a late copy of one the client acknowledged \(it settled every request up to 1\); not applied"):
        table.lookup("c", 1, 1, 0.0)


def test_an_answer_above_acked_survives_the_ack():
    table = SessionTable()
    answered(table, "c", 1, "one")
    answered(table, "c", 2, "two", acked=1)
    assert table.lookup("c", 2, 1, 0.0) == (True, "two")


def test_a_reordered_request_with_a_lower_acked_brings_nothing_back():
    table = SessionTable()
    answered(table, "c", 1, "one")
    answered(table, "c", 2, "two")
    answered(table, "c", 3, "three", acked=2)
    assert table.lookup("c", 4, 1, 0.0) == (False, None)
    with pytest.raises(SessionExpired, match="request 2 is a late copy"):
        table.lookup("c", 2, 1, 0.0)


def test_an_unknown_client_that_acked_something_is_refused():
    """With acked > 0 the client had a session the table forgot: its requests may have been applied."""
    with pytest.raises(SessionExpired, match=r"session ghost: unknown to the core \(expired or evicted long ago\); its requests that got no answer may or may not have been applied"):
        SessionTable().lookup("ghost", 5, 4, 0.0)


# --- expiry by log time ---------------------------------------------------------------------------


def test_an_idle_session_expires_by_log_time():
    table = SessionTable(idle_expiry=10.0)
    answered(table, "c", 1, "one", at=100.0)
    answered(table, "other", 1, "x", at=111.0)
    assert len(table) == 1
    with pytest.raises(SessionExpired, match="session c: expired"):
        table.lookup("c", 2, 1, 111.0)


def test_a_session_in_use_does_not_expire():
    table = SessionTable(idle_expiry=10.0)
    answered(table, "c", 1, "one", at=0.0)
    answered(table, "c", 2, "two", at=8.0)
    assert table.lookup("c", 1, 0, 16.0) == (True, "one")


def test_only_the_idle_sessions_expire():
    table = SessionTable(idle_expiry=10.0)
    answered(table, "idle", 1, "i", at=0.0)
    answered(table, "busy", 1, "b", at=0.0)
    answered(table, "busy", 2, "b", at=9.0)
    assert table.lookup("busy", 3, 0, 15.0) == (False, None)
    assert [client for client, *_ in table.dump()[1]] == ["busy"]


def test_a_request_from_an_expired_session_that_acked_nothing_starts_a_new_session():
    """Without an ack the table cannot tell a forgotten client from a new one (a limit of unregistered sessions)."""
    table = SessionTable(idle_expiry=10.0)
    answered(table, "c", 1, "one", at=0.0)
    assert table.lookup("c", 1, 0, 20.0) == (False, None)


def test_many_requests_at_one_log_time_expire_nothing():
    """Expiry counts seconds of log time, not requests."""
    table = SessionTable(idle_expiry=10.0)
    answered(table, "c", 1, "one", at=5.0)
    for seq in range(1, 200):
        answered(table, f"other{seq}", 1, seq, at=5.0)
    assert table.lookup("c", 1, 0, 5.0) == (True, "one")


def test_log_time_never_goes_back():
    """A command stamped by an older leader's slower clock must not undo an expiry or revive a session."""
    table = SessionTable(idle_expiry=10.0)
    answered(table, "c", 1, "one", at=0.0)
    answered(table, "d", 1, "one", at=50.0)
    assert table.log_time == 50.0
    table.lookup("d", 2, 0, 3.0)
    assert table.log_time == 50.0
    with pytest.raises(SessionExpired, match="session c: expired"):
        table.lookup("c", 2, 1, 3.0)


def test_a_session_used_at_an_old_stamp_counts_as_used_at_log_time():
    table = SessionTable(idle_expiry=10.0)
    answered(table, "c", 1, "one", at=50.0)
    answered(table, "c", 2, "two", at=1.0)  # stamped early, applied at log time 50
    assert table.lookup("c", 2, 0, 59.0) == (True, "two")


# --- bounds -----------------------------------------------------------------------------------


def test_beyond_max_sessions_the_least_recently_used_goes():
    table = SessionTable(max_sessions=2)
    answered(table, "a", 1, "a1")
    answered(table, "b", 1, "b1")
    answered(table, "a", 2, "a2")  # a is now the most recently used
    answered(table, "c", 1, "c1")
    assert [client for client, *_ in table.dump()[1]] == ["a", "c"]
    assert table.lookup("a", 1, 0, 0.0) == (True, "a1")
    with pytest.raises(SessionExpired, match="session b: evicted"):
        table.lookup("b", 2, 1, 0.0)


def test_a_retry_refreshes_the_session():
    table = SessionTable(max_sessions=2)
    answered(table, "a", 1, "a1")
    answered(table, "b", 1, "b1")
    assert table.lookup("a", 1, 0, 0.0) == (True, "a1")
    answered(table, "c", 1, "c1")
    assert [client for client, *_ in table.dump()[1]] == ["a", "c"]


def test_a_request_held_back_while_a_window_of_later_ones_is_answered_still_finds_its_answer():
    """Issue 16: one request's answer is lost and its retry waits out a failover, while the client's
    other requests, up to the window, are answered meanwhile; the retry must find its first answer."""
    table = SessionTable(window=4)
    answered(table, "c", 1, "one")  # its answer is lost on the way: the client still holds seq 1 open
    for seq in (2, 3, 4):
        answered(table, "c", seq, seq)  # acked stays 0: seq 1 is unsettled
    assert table.lookup("c", 1, 0, 0.0) == (True, "one")
    assert len(table.dump()[1][0][3]) == 4


def test_a_request_beyond_the_window_above_its_acked_is_refused_and_not_applied():
    table = SessionTable(window=4)
    answered(table, "c", 1, "one")
    with pytest.raises(KeelError, match=r"session c: request 5 is 5 above the acknowledged 0, beyond the window of 4"):
        table.lookup("c", 5, 0, 0.0)
    with pytest.raises(KeelError, match=r"request 6 is 5 above the acknowledged 1"):
        table.lookup("c", 6, 1, 0.0)
    assert table.lookup("c", 5, 1, 0.0) == (False, None)  # once the client acknowledged 1, 5 is within


def test_a_first_request_of_a_new_client_beyond_the_window_is_refused():
    with pytest.raises(KeelError, match="beyond the window of 4"):
        SessionTable(window=4).lookup("new", 5, 0, 0.0)


def test_a_forgotten_session_says_it_idled_out():
    table = SessionTable(idle_expiry=10.0)
    answered(table, "c", 1, "one", at=1.0)
    answered(table, "d", 1, "one", at=20.0)
    with pytest.raises(SessionExpired, match=r"session c: expired after more than 10 s without a request; its "
                                             r"requests that got no answer may or may not have been applied"):
        table.lookup("c", 2, 1, 20.0)


def test_a_forgotten_session_says_it_was_evicted():
    table = SessionTable(max_sessions=1)
    answered(table, "c", 1, "one")
    answered(table, "d", 1, "one")
    with pytest.raises(SessionExpired, match=r"session c: evicted, as the least recently used beyond the 1 sessions"):
        table.lookup("c", 2, 1, 0.0)


def test_a_session_the_table_never_knew_is_called_unknown():
    with pytest.raises(SessionExpired, match=r"session z: unknown to the core"):
        SessionTable().lookup("z", 2, 1, 0.0)


def test_what_the_table_remembers_of_forgotten_sessions_is_bounded():
    table = SessionTable(max_sessions=2)
    for client in "abcdef":
        answered(table, client, 1, "one")
    assert [client for client, _ in table.dump()[2]] == ["c", "d"]


# --- snapshots and determinism -------------------------------------------------------------


def test_a_loaded_dump_keeps_answers_acks_and_the_order_of_use():
    table = SessionTable(max_sessions=2, idle_expiry=10.0)
    answered(table, "a", 1, "a1", at=1.0)
    answered(table, "b", 1, "b1", at=2.0)
    answered(table, "b", 2, "b2", acked=1, at=3.0)
    answered(table, "a", 2, "a2", at=4.0)
    loaded = SessionTable(max_sessions=2, idle_expiry=10.0)
    loaded.load(*table.dump())
    assert loaded.dump() == table.dump()
    for t in (table, loaded):
        answered(t, "c", 1, "c1", at=4.0)  # evicts b, the least recently used
    assert loaded.dump() == table.dump()
    assert [client for client, *_ in loaded.dump()[1]] == ["a", "c"]
    assert loaded.lookup("a", 1, 0, 13.0) == (True, "a1")
    with pytest.raises(SessionExpired, match="session b: evicted"):
        loaded.lookup("b", 3, 2, 4.0)  # b was evicted from both alike


requests = st.lists(st.tuples(st.sampled_from("abc"), st.integers(1, 6), st.integers(0, 5),
                              st.sampled_from((0.0, 1.0, 6.0))), max_size=40)


def clients(table: SessionTable) -> set[str]:
    return {client for client, *_ in table.dump()[1]}


@given(requests=requests)
@RUNS
def test_while_its_session_lives_a_request_is_applied_once_and_answered_with_its_first_answer(requests):
    """Under any mix of retries, acks, evictions and expiry.

    Once a session is forgotten (idle or evicted) the table can promise
    nothing about its old requests, so the reference forgets them too.
    """
    table = SessionTable(max_sessions=2, window=3, idle_expiry=10.0)
    first: dict[tuple[str, int], int] = {}  # (client, seq) -> first answer, while its session lives

    def sweep() -> None:
        for gone in {client for client, _ in first} - clients(table):
            for key in [key for key in first if key[0] == gone]:
                del first[key]

    at = 0.0
    for i, (client, seq, acked, step) in enumerate(requests):
        at += step
        try:
            seen, answer = table.lookup(client, seq, min(acked, seq - 1), at)
        except SessionExpired:
            sweep()
            continue
        except KeelError:  # beyond the window: refused, and so not applied
            assert (client, seq) not in first
            sweep()
            continue
        sweep()
        if seen:
            assert answer == first[client, seq]
        else:
            assert (client, seq) not in first  # it would be applied twice
            table.record(client, seq, i)
            first[client, seq] = i
            sweep()
