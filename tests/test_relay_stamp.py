"""The relay's inlined stamp (app.pipe.relay.Relay._stamp_frames) makes the same bytes as
app.pipe.events.stamp, event for event: a real relay thread reading a real pipe.

Pins the hot path that skips kind_of and stamp for the events it only
passes on: the SSE frame, where its JSON starts, seq and kind must be what stamp() makes of
the frame as written, `t` the text repr(round(t, 6)) gives (exponents below 1e-4, "2.0"
for whole seconds, the half-microsecond cases), whatever the reads cut.
"""

from __future__ import annotations

import os
import queue

from procscope.pipe import framing
from procscope.pipe.events import Event, stamp
from procscope.pipe.relay import Relay

RUN = "17"
T0 = 1_000_000_000_000


def _frames() -> list[tuple[int, dict[str, object]]]:
    offsets = [0, 1, 499, 500, 501, 50_000, 99_999, 99_999_500, 100_000, 100_500,
               1_000_000_000, 2_000_000_000, 2_000_000_500, 2_000_001_500, 123_456_789_499,
               123_456_789_500, 86_400_000_000_000 + 7, -5_000]
    out = []
    for i, offset in enumerate(offsets):
        kind = ("bench.tick", "lock.acquire", "queue.put")[i % 3]
        out.append((T0 + offset, {"kind": kind, "pid": 40 + i, "ppid": 1, "cpu": i % 2,
                                  "proc": "w-é", "data": {"i": i, "text": "\"é\n"}}))
    out.insert(5, (T0 + 7, {"kind": "proc.start", "pid": 9, "ppid": 1, "cpu": None,
                            "proc": "worker-9",
                            "data": {"role": "worker", "name": "worker-9", "daemon": False}}))
    out.append((T0 + 8, {"kind": "error", "pid": 9, "data": {"type": "X"}}))
    return out


def _relay_events(payload: bytes, max_events: int, pieces: int) -> list[Event]:
    got: queue.SimpleQueue[list[Event]] = queue.SimpleQueue()
    eof: queue.SimpleQueue[str] = queue.SimpleQueue()
    relay = Relay(lambda run_id, events: got.put(events), eof.put)
    read_fd, write_fd = os.pipe()
    relay.start()
    try:
        relay.add(RUN, read_fd, T0, {"experiment": "x"}, max_events=max_events)
        step = -(-len(payload) // pieces)
        for at in range(0, len(payload), step):  # frames cut across writes, and so reads
            os.write(write_fd, payload[at:at + step])
        os.close(write_fd)
        assert eof.get(timeout=30) == RUN
        relay.end(RUN, None, 0)
        events: list[Event] = []
        while not events or events[-1].kind != "run.end":
            events += got.get(timeout=30)
    finally:
        relay.stop()
    return events


def _expected(frames: list[tuple[int, dict[str, object]]], max_events: int) -> list[bytes]:
    out = []
    seq = 1  # run.start
    for t_ns, event in frames:
        body = framing.encode_frame(t_ns, event)[framing.FRAME.size:]
        if seq >= max_events and event["kind"] not in ("proc.start", "error"):
            continue
        seq += 1
        out.append(stamp(RUN, seq, round((t_ns - T0) / 1e9, 6), str(event["kind"]),
                         body).frame)
    return out


def test_the_inlined_stamp_makes_the_bytes_stamp_makes() -> None:
    frames = _frames()
    payload = b"".join(framing.encode_frame(t, e) for t, e in frames)
    expected = _expected(frames, 1_000_000)
    for pieces in (1, 7, len(payload) // 5):
        events = _relay_events(payload, 1_000_000, pieces)
        passed = events[1:1 + len(expected)]
        assert [e.frame for e in passed] == expected
        # then the ledger's own: worker-9 never said it exited; run.end
        assert [e.kind for e in events[1 + len(expected):]] == ["proc.exit", "run.end"]
        for e in passed:
            reference = Event(e.seq, e.kind, e.json)
            assert (e.frame, e.data_at, e.obj) == (reference.frame, reference.data_at,
                                                   reference.obj)
        assert [e.seq for e in events] == list(range(1, len(events) + 1))


def test_past_the_cap_only_the_kept_kinds_are_stamped() -> None:
    frames = _frames()
    payload = b"".join(framing.encode_frame(t, e) for t, e in frames)
    expected = _expected(frames, 4)
    events = _relay_events(payload, 4, 3)
    passed = events[1:1 + len(expected)]
    assert [e.frame for e in passed] == expected
    assert [e.kind for e in passed[3:]] == ["proc.start", "error"]
    assert events[-1].obj["data"]["dropped"] > 0


def test_a_frame_whose_json_does_not_begin_with_its_kind_is_reported_garbled() -> None:
    good = framing.encode_frame(T0 + 1_000_000, {"kind": "bench.tick", "data": {}})
    garbled = framing.HEADER.pack(28) + b"\0" * 8 + b'{"pid":1,"kind":"x"}'
    events = _relay_events(good + garbled + good, 1_000_000, 1)
    kinds = [e.kind for e in events]
    assert kinds[:4] == ["run.start", "bench.tick", "relay.garbled", "bench.tick"]
