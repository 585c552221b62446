"""The callback thread: a client's callbacks one at a time, in order, past one that raises."""

from __future__ import annotations

import threading

from keel.client.callbacks import CallbackThread

WAIT_S = 30.0  # seconds to wait for what happens at once unless the thread is broken


def test_callbacks_run_in_order_on_the_thread_and_one_that_raises_does_not_stop_the_rest() -> None:
    runner = CallbackThread("test-callbacks")
    seen: list[tuple[str, int]] = []
    done = threading.Event()

    def record(n: int) -> None:
        seen.append((threading.current_thread().name, n))

    def boom() -> None:
        raise RuntimeError("a program's bug")

    for n in range(3):
        runner.submit(record, n)
    runner.submit(boom)
    runner.submit(record, 3)
    runner.submit(done.set)
    assert done.wait(WAIT_S)
    runner.close(timeout=WAIT_S)
    assert seen == [("test-callbacks", n) for n in range(4)]
    assert not runner.submit(record, 4)  # closed: refused, never run


def test_closing_from_inside_a_callback_does_not_wait_for_itself() -> None:
    runner = CallbackThread("self-closing")
    closed = threading.Event()

    def close_me() -> None:
        runner.close(timeout=WAIT_S)
        closed.set()

    runner.submit(close_me)
    assert closed.wait(WAIT_S)
