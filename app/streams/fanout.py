"""A log's viewers served together: per flush, one read per cursor, one chunk to all.

Runs in the server, on its event loop: one `Fanout` per (log, format) that has viewers,
one flusher task each. A run stream (app.streams.stream.RunStream) parks here at once, at
its cursor, whether it is at the log's end (live) or behind it (a student who opens the
teacher's link mid-run reads from seq 0; a reconnect). The flusher then, at most once per
interval (at once while anyone is behind):

    for each cursor with viewers:
        behind: the backlog's next cell, made once for everyone (`Backlog`)
        at the end: log.wait(cursor); log.read(cursor) ─► one Chunk (framed once)
        ─► outlet.write(chunk) for every viewer at that cursor
    viewers that reached the same new cursor are one group again

The backlog is cut on a grid of seqs (CELL): a read from behind stops at the next multiple
of CELL, so viewers that joined at different moments (or resumed after different seqs)
are on the grid after their first read, and every later cell of the run is one set of
bytes, HTTP-framed once, written to each of them; the cells last read are kept (KEPT), the
log's frames themselves are never copied per viewer. Groups catch up one cell per flush
each and merge with the live group where they reach it.

A viewer whose connection is full (its outlet not writable) is not written to: it goes
back to its own coroutine, which waits for it at most the send timeout and then parks
again at its cursor, so a stalled laptop never holds up the class. This sits above the
RunLog protocol (app.streams.hub), so every log (the memory, SQLite, Redis and news logs)
shares it unchanged.

The interval adapts to what a flush costs: at least FLUSH_INTERVAL, and long enough that
sending takes at most SEND_SHARE of the loop (with 1,000 viewers a flush is several ms of
send() calls; flushing every 15 ms then would leave the loop no time for anything else,
and every viewer's latency would grow instead). At most MAX_INTERVAL. The cost is the
loop thread's CPU time over the flush, not the wall clock: on a shared machine a flush
preempted for 30 ms cost nothing more, and must not make everyone wait longer.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Literal

from procscope.pipe.events import Format
from procscope.streams.hub import RunLog
from procscope.streams.outlet import Chunk, Outlet

# Seconds between two flushes of a log to its viewers, at least: a viewer's lateness is up
# to this, and each flush costs a send per viewer whatever it holds (a shorter interval:
# more server CPU per delivered event). It stays above the relay's nap (app.pipe.relay.NAP_S).
FLUSH_INTERVAL = 0.015
MAX_INTERVAL = 0.1  # ... and at most, however many viewers
# Of the loop's time that one log's flushes may take, at most: the interval grows until a
# flush's measured cost is this share of it, so that the loop keeps time for everything
# else (new viewers, the API). python -m bench.fanout measures both.
SEND_SHARE = 0.4
COST_WEIGHT = 0.2  # a flush's cost counts this much into the running estimate
# The backlog's grid: a read from behind stops at the next multiple of CELL seqs (a cell is
# one write per viewer; frames are at most PIPE_BUF-sized, so a cell's bytes are bounded).
CELL = 256
CELL_BYTES = 1 << 20  # ... and at most this many bytes (a cell cut short is not kept)
KEPT = 64  # cells kept per fanout, the last read: viewers a few cells apart share them

Left = Literal["behind", "end", "stopping", "gone", "failed"]
logger = logging.getLogger("procscope.streams.fanout")


class Viewer:
    """One client of a fanout: its cursor, its outlet, and why it was handed back."""

    __slots__ = ("cursor", "outlet", "left", "gone", "joining")

    def __init__(self, cursor: int, outlet: Outlet) -> None:
        self.cursor = cursor
        self.outlet = outlet
        self.left: asyncio.Future[Left] | None = None
        self.gone = False  # its client went away (set by its stream)
        self.joining = False  # parked behind the log's end, not yet served up to it

    def _leave(self, why: Left) -> None:
        if self.left is not None and not self.left.done():
            self.left.set_result(why)


class Backlog:
    """The cells of a log behind its end, each read and HTTP-framed once for every viewer
    that passes it (the last KEPT cells read are kept)."""

    def __init__(self, log: RunLog, fmt: Format) -> None:
        self.log = log
        self.fmt = fmt
        self._cells: OrderedDict[int, tuple[Chunk, int]] = OrderedDict()
        self.made = 0  # cells read from the log
        self.sent = 0  # cells written to viewers (each viewer's each cell)

    def has(self, cursor: int) -> bool:
        return cursor in self._cells

    def cell(self, cursor: int) -> tuple[Chunk, int]:
        """The chunk after `cursor` up to the next grid point (or the log's end) and the
        new cursor. A whole cell is kept; the log's tail (it still grows) is not."""
        kept = self._cells.get(cursor)
        if kept is not None:
            self._cells.move_to_end(cursor)
            return kept
        upto = (cursor // CELL + 1) * CELL
        body, new = self.log.read(cursor, self.fmt, CELL_BYTES, upto)
        cell = Chunk(body), new
        self.made += 1
        if new == upto:  # whole: it never changes
            self._cells[cursor] = cell
            if len(self._cells) > KEPT:
                self._cells.popitem(last=False)
        return cell


class Fanout:
    """The viewers of one log in one format that have everything the log holds."""

    def __init__(self, log: RunLog, fmt: Format, stopping: asyncio.Event,
                 ping: Callable[[], bytes] | None = None, ping_seconds: float = 15) -> None:
        self.log = log
        self.fmt = fmt
        self._ping = ping  # SSE: a comment after ping_seconds without a flush
        self._ping_seconds = ping_seconds
        self._stopping = stopping
        self._groups: dict[int, dict[Viewer, None]] = {}  # cursor -> its viewers
        self._task: asyncio.Task[None] | None = None
        self._last = 0.0  # when the last flush began
        self._quiet_since = time.monotonic()  # the last flush or ping (SSE pings after quiet)
        self._cost = 0.0  # running estimate of one flush's duration, seconds
        self._live_short = False  # the last live read stopped short of the log's end
        self.flushes = 0
        self.streams = 0  # the streams of this log and format, parked or catching up
        self.backlog = Backlog(log, fmt)
        self.joined = 0  # viewers that caught up with the log's end here (were behind)

    def __len__(self) -> int:
        return sum(len(g) for g in self._groups.values())

    def behind(self) -> int:
        """The viewers parked here that have not yet caught up with the log's end."""
        return sum(v.joining for g in self._groups.values() for v in g)

    def interval(self) -> float:
        return min(MAX_INTERVAL, max(FLUSH_INTERVAL, self._cost / SEND_SHARE))

    def park(self, viewer: Viewer) -> asyncio.Future[Left]:
        """Serve `viewer` from its cursor on; the future says why it was handed back."""
        viewer.left = asyncio.get_running_loop().create_future()
        viewer.joining = viewer.cursor < len(self.log)
        self._groups.setdefault(viewer.cursor, {})[viewer] = None
        if self._task is None:
            self._task = asyncio.ensure_future(self._run())
        return viewer.left

    def unpark(self, viewer: Viewer, why: Left) -> None:
        """Take a viewer out (its client went away); the last one out stops the flusher."""
        group = self._groups.get(viewer.cursor)
        if group is not None and viewer in group:
            del group[viewer]
            if not group:
                del self._groups[viewer.cursor]
        viewer._leave(why)
        if not self._groups and self._task is not None:
            task, self._task = self._task, None
            task.cancel()  # not left waiting on a quiet log, holding a task

    def _hand_back(self, why: Left) -> None:
        groups, self._groups = self._groups, {}
        for group in groups.values():
            for viewer in group:
                viewer._leave(why)

    async def _run(self) -> None:
        log = self.log
        watcher = asyncio.ensure_future(_poke_on(self._stopping, log))
        behind = False  # the last flush read a full chunk and the log held more
        try:
            while self._groups:
                if self._stopping.is_set():
                    self._hand_back("stopping")
                    return
                for cursor in [c for c in self._groups if log.done(c)]:
                    for viewer in self._groups.pop(cursor):
                        viewer._leave("end")
                if not self._groups:
                    return
                if all(c >= len(log) for c in self._groups):
                    # Nothing for anyone yet (a cursor past the log's end waits for it, as a
                    # reconnect to a replica still catching up must). One wait: a poke
                    # (stopping, forgotten) wakes it with nothing new too, and we look again.
                    if self._ping is None:
                        await log.wait(min(self._groups))
                        continue
                    try:
                        async with asyncio.timeout_at(self._quiet_since + self._ping_seconds):
                            await log.wait(min(self._groups))
                    except TimeoutError:
                        self._ping_all()
                    continue
                delay = self._last + self.interval() - time.monotonic()
                if delay > 0 and not log.ended and not behind:
                    await asyncio.sleep(delay)  # let more events gather into this flush
                    live = True
                else:
                    await asyncio.sleep(0)  # behind: at once, after the loop's other work
                    # the live groups at their interval still (or cut short last time)
                    live = delay <= 0 or log.ended or self._live_short
                behind = await self._flush(live)
        except Exception:
            # A log that cannot be read (a history file damaged under us): its viewers'
            # streams end, each with the error in the server's log, never a retry loop.
            logger.exception("streaming run events failed")
            self._hand_back("failed")
        finally:
            watcher.cancel()
            if self._task is asyncio.current_task():
                self._task = None
                if self._groups:  # cancelled with viewers parked: they go on alone
                    self._hand_back("behind")

    def _ping_all(self) -> None:
        assert self._ping is not None
        chunk = Chunk(self._ping())
        self._quiet_since = time.monotonic()
        for group in self._groups.values():
            for viewer in group:
                if not viewer.gone and viewer.outlet.writable():
                    viewer.outlet.write(chunk)

    async def _flush(self, live: bool = True) -> bool:
        """One read per cursor, its chunk to every viewer there (`live`: the groups near the
        log's end too, else only those a cell or more behind); True if a read stopped
        short of the log's end (a cell, or a chunk of READ_BYTES at most): flush again at
        once, or a loop slowed down (1,000 viewers, a busy machine) would fall behind for
        good."""
        log = self.log
        behind = False
        if live:
            self._last = self._quiet_since = time.monotonic()
            self._live_short = False
        start = time.thread_time()
        live_cost: float | None = None
        # The live groups first, then those behind (each behind by a cell or more: the
        # backlog's next cell, shared), a turn of the loop after each, so that a class
        # catching up never delays the live stream, nor new connections.
        end = len(log)
        for cursor in sorted(self._groups, key=lambda c: (end - c >= CELL, c)):
            if cursor >= len(log):
                continue
            # Else the tail, one read for the group (a live group is not cut at the grid).
            from_backlog = len(log) - cursor >= CELL
            if not (live or from_backlog):
                continue
            if from_backlog:
                if live_cost is None:
                    live_cost = time.thread_time() - start
                else:
                    await asyncio.sleep(0)
            if not (from_backlog and self.backlog.has(cursor)):
                # What the protocol asks before a read (SQLite fetches what is on disk off
                # the loop); the memory and Redis logs return at once.
                await log.wait(cursor)
            group = self._groups.pop(cursor, None)
            if not group:
                continue
            if from_backlog:
                chunk, new = self.backlog.cell(cursor)
                body = chunk.body
            else:
                body, new = log.read(cursor, self.fmt)
                chunk = Chunk(body)
            at_end = new >= len(log)
            sent = 0
            done = log.done(new)
            moved = self._groups.setdefault(new, {}) if not done else None
            for viewer in group:
                outlet = viewer.outlet
                if viewer.gone or outlet.gone():
                    viewer._leave("gone")
                    continue
                if not outlet.writable():
                    viewer._leave("behind")  # its own coroutine waits for it, then parks again
                    continue
                if body:
                    outlet.write(chunk)
                    sent += 1
                viewer.cursor = new
                if at_end and viewer.joining:
                    viewer.joining = False
                    self.joined += 1
                if moved is None:
                    viewer._leave("end")
                else:
                    moved[viewer] = None
            if from_backlog:
                self.backlog.sent += sent
            if moved is not None and not moved:
                del self._groups[new]
            short = moved is not None and new < len(log)
            behind = behind or short
            if short and not from_backlog:
                self._live_short = True
        self.flushes += 1
        # (the interval paces the live stream: the backlog's sends do not lengthen it)
        if live:
            cost = time.thread_time() - start if live_cost is None else live_cost
            self._cost += COST_WEIGHT * (cost - self._cost)
        return behind


async def _poke_on(stopping: asyncio.Event, log: RunLog) -> None:
    await stopping.wait()
    log.poke()


class Fanouts:
    """Every live fanout of the server, by log and format; one is made on first use."""

    def __init__(self, stopping: asyncio.Event, ping: Callable[[], bytes],
                 ping_seconds: float) -> None:
        self._stopping = stopping
        self._ping = ping
        self._ping_seconds = ping_seconds
        self._by_log: dict[tuple[int, Format], Fanout] = {}
        self._past = {"joined": 0, "cells_read": 0, "cells_sent": 0}  # released fanouts'

    def get(self, log: RunLog, fmt: Format) -> Fanout:
        """The fanout of `log` in `fmt`, for one more stream (`release` it at its end)."""
        key = (id(log), fmt)
        fanout = self._by_log.get(key)
        if fanout is None or fanout.log is not log:
            fanout = self._by_log[key] = Fanout(
                log, fmt, self._stopping, self._ping if fmt == "sse" else None,
                self._ping_seconds)
        fanout.streams += 1
        return fanout

    def release(self, fanout: Fanout) -> None:
        """A stream of it ended; the last one's end forgets the fanout (and its log)."""
        fanout.streams -= 1
        key = (id(fanout.log), fanout.fmt)
        if not fanout.streams and self._by_log.get(key) is fanout:
            del self._by_log[key]
            for name, value in _counts(fanout).items():
                self._past[name] += value

    def status(self) -> dict[str, int]:
        """For /api/status: the viewers served together now (`viewers`, of them `behind`
        the log's end), and since the start, the viewers that caught up and `joined` a live
        group, the backlog's cells read from a log and those sent to viewers."""
        live = list(self._by_log.values())
        counts = dict(self._past)
        for fanout in live:
            for name, value in _counts(fanout).items():
                counts[name] += value
        return {"viewers": sum(len(f) for f in live), "behind": sum(f.behind() for f in live),
                **counts}


def _counts(fanout: Fanout) -> dict[str, int]:
    return {"joined": fanout.joined, "cells_read": fanout.backlog.made,
            "cells_sent": fanout.backlog.sent}
