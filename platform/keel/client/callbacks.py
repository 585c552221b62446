"""The thread that runs a client's callbacks: lease listeners and watch callbacks.

A program's callback must not run on the client's loop thread: one that
makes a blocking call of the same client would wait for the loop it
blocks. So callbacks run here, on one daemon thread the client owns,
started at the first callback: one at a time, in the order they were
queued, so a watch's events arrive in order. A callback that raises is
logged and the next one runs. The queue stays short by construction: a
watch queues its next batch only after the last one was run, and a lease
is lost once.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["CallbackThread"]

log = logging.getLogger("keel.client")

_STOP = object()  # queued by `close`: the thread ends after what was queued before it


class CallbackThread:
    """Runs queued callables one at a time on a daemon thread of its own; see the module doc."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._lock = threading.Lock()  # guards starting and closing
        self._thread: threading.Thread | None = None
        self._closed = False

    def submit(self, fn: Callable[..., object], *args: Any) -> bool:
        """Queue `fn(*args)` (from any thread); False when closed, and it will not run."""
        with self._lock:
            if self._closed:
                return False
            if self._thread is None:
                self._thread = threading.Thread(target=self._main, name=self.name, daemon=True)
                self._thread.start()
            self._queue.put((fn, args))
        return True

    def current(self) -> bool:
        """Whether the caller is running on this thread (inside a callback)."""
        return self._thread is not None and threading.current_thread() is self._thread

    def close(self, *, timeout: float | None = None) -> None:
        """Run what is queued, then end; wait up to `timeout` (None: not at all). Idempotent.

        From inside a callback it never waits: the thread ends after that callback.
        """
        with self._lock:
            if not self._closed:
                self._closed = True
                if self._thread is not None:
                    self._queue.put(_STOP)
            thread = self._thread
        if thread is not None and timeout is not None and not self.current():
            thread.join(timeout)

    def _main(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            fn, args = item
            try:
                fn(*args)
            except Exception:
                log.exception("%s: a callback raised; going on with the next", self.name)
