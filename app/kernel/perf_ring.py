"""A perf event's ring buffer: mapped, and its records taken out.

Runs in the server, in the one thread that drains a recorder.

Memory order: the ring is read as perf's tools do (load data_head, read barrier, read the
records, store data_tail). On x86-64 (TSO) loads are not reordered with older loads nor
stores with older loads, so plain 8-byte loads and stores in order are the barriers; that is
one reason (with the syscall number) exact core lanes are "not available" on other machines.
"""

from __future__ import annotations

import mmap
import os

from procscope.kernel.perf_abi import U64

DATA_HEAD, DATA_TAIL = 1024, 1032  # offsets in struct perf_event_mmap_page
PAGE = mmap.PAGESIZE


def map_ring(fd: int, data_pages: int) -> mmap.mmap:
    """The event's control page and `data_pages` pages of records (a power of two)."""
    return mmap.mmap(fd, (1 + data_pages) * PAGE)


def map_or_close(fd: int, data_pages: int) -> mmap.mmap:
    """map_ring, or the fd closed and the error raised."""
    try:
        return map_ring(fd, data_pages)
    except OSError:
        os.close(fd)
        raise


def read_ring(ring: mmap.mmap) -> bytes:
    """Take every record from a ring (copied out, wrap-around joined) and free its space."""
    head = U64.unpack_from(ring, DATA_HEAD)[0]  # then rmb: a no-op on x86-64 (TSO)
    tail = U64.unpack_from(ring, DATA_TAIL)[0]
    if head == tail:
        return b""
    size = len(ring) - PAGE
    start, stop = PAGE + tail % size, PAGE + head % size
    if head - tail > size:  # cannot happen: the kernel does not overwrite unread data
        raise RuntimeError(f"perf ring overrun: head {head}, tail {tail}, size {size}")
    data = ring[start:stop] if start < stop else ring[start:] + ring[PAGE:stop]
    U64.pack_into(ring, DATA_TAIL, head)
    return data
