"""A lease of a client with a background loop, as the program's threads see it.

The lease itself (`keel.client.lease.Lease`) lives in the client's loop,
which keeps it alive every ttl/3 whether or not the program calls. This
view reads what the loop wrote (its id, ttl, and the error once lost:
each written once, so reading from another thread is safe) and remembers
what the program did with it: whether it ended the lease itself (then a
loss is no news) and whether a loss was already reported to it.
The blocking and asyncio doors subclass it with their own `keepalive`
and `revoke`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from keel.client.lease import Lease
from keel.errors import LeaseExpired

if TYPE_CHECKING:
    from keel.client.handle import ClientHandle

__all__ = ["LeaseView"]


class LeaseView:
    """A lease kept alive by the client's loop; see the module doc.

    Attributes:
        id: the lease id, for `put(..., lease=)` and compares.
        ttl: seconds the lease lives without keep-alives.
    """

    def __init__(self, handle: ClientHandle, lease: Lease) -> None:
        self._handle = handle
        self.lease = lease  # touched only in the loop's thread
        self.id = lease.id
        self.ttl = lease.ttl
        self.ended = False  # the program revoked it (or left its block): a loss is then no news
        self.reported = False  # its loss was raised to the program once already

    def __repr__(self) -> str:
        state = "lost" if self.lost else "ended" if self.ended else "alive"
        return f"{type(self).__name__}(id={self.id}, ttl={self.ttl:g}, {state})"

    @property
    def lost(self) -> bool:
        """Whether the lease is gone: the core ended it, or no keep-alive was confirmed within its ttl."""
        return self.lease.error is not None

    @property
    def error(self) -> LeaseExpired | None:
        """The `LeaseExpired` that says why the lease was lost, once it was."""
        return self.lease.error

    def check(self) -> None:
        """Raise `LeaseExpired` if the lease was lost (then the next call of the client does not raise it again)."""
        error = self.lease.error
        if error is not None:
            self.reported = True
            raise LeaseExpired(f"lease {self.id}: lost: {error}") from error
