"""The client's half of the Idempotent Receiver: seqs, the acked watermark, a new session after expiry."""

from __future__ import annotations

import random

from keel.client.session import Session


def test_seqs_grow_from_one_and_acked_stays_zero_until_an_answer() -> None:
    session = Session()
    (client, one), (_, two) = session.begin(), session.begin()
    assert (one, two) == (1, 2)
    session.settle(client, one, answered=False)
    session.settle(client, two, answered=False)
    # The core opens a session with its first recorded answer; acked > 0 before that reads as expired.
    assert session.acked == 0


def test_acked_is_the_highest_seq_below_every_unsettled_one() -> None:
    session = Session()
    (client, one), (_, two), (_, three) = session.begin(), session.begin(), session.begin()
    session.settle(client, two, answered=True)
    assert session.acked == one - 1  # seq 1 may still be retried
    session.settle(client, one, answered=True)
    assert session.acked == two  # seq 3 is still open
    session.settle(client, three, answered=True)
    assert session.acked == three


def test_a_given_up_seq_is_settled_once_some_answer_exists() -> None:
    session = Session()
    (client, first), (_, second) = session.begin(), session.begin()
    session.settle(client, first, answered=False)
    assert session.acked == 0
    session.settle(client, second, answered=True)
    assert session.acked == second  # the abandoned seq 1 will never be sent again


def test_an_expired_session_is_replaced_and_its_requests_keep_their_acked() -> None:
    session = Session()
    old, one = session.begin()
    session.settle(old, one, answered=True)
    _, two = session.begin()  # in flight when the core forgets the session
    session.expired(old)
    new, first = session.begin()
    assert new != old and first == 1
    assert session.acked_for(old) == 1  # the retry of seq 2 still says what the old session acked
    session.settle(old, two, answered=False)  # does not touch the new session
    assert session.acked == 0
    session.expired(old)  # a second report of the same expiry changes nothing
    assert session.client == new


def test_every_client_gets_its_own_random_id() -> None:
    ids = {Session().client for _ in range(100)}
    assert len(ids) == 100
    assert Session("fixed").client == "fixed"


def test_no_seq_is_issued_beyond_the_window_above_the_acked_it_would_carry() -> None:
    session = Session(window=3)
    client, one = session.begin()
    session.settle(client, one, answered=True)
    _, held = session.begin()  # seq 2: its answer is lost, its retry waits out a failover
    for _ in range(2):
        session.settle(client, session.begin()[1], answered=True)  # seqs 3 and 4 pass it
    assert (session.acked, session.room()) == (1, False)  # seq 5 would be 4 above acked 1
    session.settle(client, held, answered=True)
    assert (session.acked, session.room()) == (4, True)


def test_before_any_answer_only_a_window_of_seqs_is_issued() -> None:
    session = Session(window=2)
    session.begin(), session.begin()
    assert not session.room()


def test_a_session_whose_window_of_requests_all_went_unanswered_starts_over() -> None:
    """The core was down: nothing of the old id was ever recorded, so a new id costs nothing and waits for nothing."""
    session = Session(window=2)
    old = session.client
    for _ in range(2):
        client, seq = session.begin()
        session.settle(client, seq, answered=False)
    assert session.room()
    assert session.client != old and session.begin()[1] == 1


def test_every_issued_seq_is_within_the_window_whatever_the_order_of_settling() -> None:
    rng = random.Random(7)
    session = Session(window=8)
    open_: list[tuple[str, int]] = []
    for _ in range(2000):
        if session.room() and rng.random() < 0.6:
            client, seq = session.begin()
            assert seq - session.acked_for(client) <= 8
            open_.append((client, seq))
        elif open_:
            client, seq = open_.pop(rng.randrange(len(open_)))
            session.settle(client, seq, answered=True)
