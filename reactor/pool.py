"""A bounded pool of fixed-size buffers.

Memory for connection data is capped at ``max_buffers × buffer_size``: a session that cannot
get a buffer is refused (the caller answers 503 or closes), instead of letting a flood of
connections grow the process without bound. Buffers are ``bytearray`` objects filled with
``recv_into`` through ``memoryview`` slices, and returned for reuse when a session closes.

At most ``max_free`` returned buffers are kept for reuse (and at least ``min_buffers``):
after a burst, the memory of the surplus goes back to the allocator instead of staying
with an idle proxy.
"""

from __future__ import annotations


class BufferPool:
    __slots__ = ("_free", "buffer_size", "created", "in_use", "max_buffers", "max_free")

    def __init__(
        self, max_buffers: int, buffer_size: int, min_buffers: int = 1, max_free: int = 128
    ) -> None:
        if max_buffers < 1 or buffer_size < 1:
            raise ValueError("max_buffers and buffer_size must be positive")
        self.max_buffers = max_buffers
        self.buffer_size = buffer_size
        self._free: list[bytearray] = [
            bytearray(buffer_size) for _ in range(min(min_buffers, max_buffers))
        ]
        #: buffers alive now (in use or free); never above ``max_buffers``
        self.created = len(self._free)
        self.in_use = 0
        self.max_free = max(max_free, min_buffers)

    def checkout(self) -> bytearray | None:
        """A buffer, or None when ``max_buffers`` are already out."""
        buf = self.spare()
        if buf is not None:
            self._free.pop()
            self.in_use += 1
        return buf

    def spare(self) -> bytearray | None:
        """The buffer the next ``checkout`` returns, left in the pool (None when none can
        be had). A reader with no buffer reads into it and checks it out only when bytes
        came: an event with nothing to read costs no checkout and checkin."""
        free = self._free
        if free:
            return free[-1]
        if self.created < self.max_buffers:
            self.created += 1
            buf = bytearray(self.buffer_size)
            free.append(buf)
            return buf
        return None

    def checkin(self, buf: bytearray | None) -> None:
        if buf is None:
            return
        self.in_use -= 1
        if len(self._free) < self.max_free:
            self._free.append(buf)
        else:
            self.created -= 1  # let it go: the pool may allocate it again under load

    @property
    def available(self) -> int:
        return self.max_buffers - self.in_use
