"""Unit tests for the pure logic of an event's way: frames, splicing, encodings.

The frame (app.pipe.framing) is what every process of a run writes; the relay splits frames out
of whatever a read() returned and splices run, seq and t into the bytes as written
(app.pipe.events.stamp). A bug here garbles or loses events silently, so each rule is pinned.
"""

from __future__ import annotations

import json
import os

from procscope.pipe import framing, reporter
from procscope.pipe.events import Event, body_of, server_event, server_stopping, stamp


def unframe(frame: bytes) -> tuple[int, bytes]:
    """One whole frame's (t_ns, JSON body), read by the layout app.pipe.framing documents.
    (Frames cut across reads: tests/test_relay_stamp.py, through the relay itself.)"""
    (n,) = framing.HEADER.unpack_from(frame)
    assert n == len(frame) - framing.HEADER.size
    (t_ns,) = framing.STAMP.unpack_from(frame, framing.HEADER.size)
    return t_ns, frame[framing.FRAME.size:]


def unframe_all(raw: bytes) -> list[tuple[int, bytes]]:
    """Every whole frame of what a pipe held, in order."""
    out, at = [], 0
    while at < len(raw):
        (n,) = framing.HEADER.unpack_from(raw, at)
        out.append(unframe(raw[at:at + framing.HEADER.size + n]))
        at += framing.HEADER.size + n
    return out


def test_a_frame_holds_its_time_and_json() -> None:
    frame = framing.encode_frame(123_456_789, {"kind": "lock.wait", "pid": 7, "data": {"n": 1}})
    t_ns, body = unframe(frame)
    assert t_ns == 123_456_789
    assert json.loads(body) == {"kind": "lock.wait", "pid": 7, "data": {"n": 1}}
    assert framing.kind_of(body) == "lock.wait"


def test_an_oversized_event_is_truncated_and_marked_never_split() -> None:
    frame = framing.encode_frame(5, {"kind": "print", "pid": 1, "data": {"text": "x" * 10_000}})
    assert len(frame) <= framing.PIPE_BUF
    _, body = unframe(frame)
    event = json.loads(body)
    assert event["kind"] == "print" and event["pid"] == 1
    assert event["data"]["truncated"] is True
    assert event["data"]["bytes"] > 10_000
    assert event["data"]["preview"].startswith('{"text":"xxx')


def test_kind_of_a_garbled_body_is_none() -> None:
    assert framing.kind_of(b'{"pid":1,"kind":"x"}') is None  # kind is not first
    assert framing.kind_of(b'{"kind":"unterminated') is None
    assert framing.kind_of(b"") is None


def test_stamp_splices_run_seq_and_t_in_front_of_the_bytes_as_written() -> None:
    body = b'{"kind":"queue.put","pid":9,"ppid":1,"cpu":0,"proc":"p","data":{"depth":2}}'
    event = stamp("12", 42, 1.5, "queue.put", body)
    obj = json.loads(event.json)
    assert list(obj)[:4] == ["run", "seq", "t", "kind"]
    assert obj == {"run": "12", "seq": 42, "t": 1.5, "kind": "queue.put", "pid": 9, "ppid": 1,
                   "cpu": 0, "proc": "p", "data": {"depth": 2}}
    assert event.json.endswith(body[1:])  # the process's own bytes, not re-encoded


def test_an_event_is_one_sse_frame_and_one_ndjson_line() -> None:
    event = stamp("1", 3, 0.25, "print", b'{"kind":"print","data":{"text":"hi\\u2028"}}')
    lines = event.frame.decode().split("\n")
    assert lines[:3] == ["id: 3", "event: print", "data: " + event.json.decode()]
    assert event.frame.endswith(b"\n\n") and event.frame.count(b"\n") == 4
    assert event.ndjson == event.json + b"\n"
    assert event.obj["data"]["text"] == "hi\u2028"
    assert isinstance(Event(1, "x", b"{}").obj, dict)


def test_a_server_event_has_the_one_shape_with_kind_first_and_no_t() -> None:
    event = server_event("sampler.rate", {"hz": 50.0}, t_ns=99, pid=None)
    assert set(event) == {"kind", "t", "pid", "ppid", "cpu", "proc", "data"}
    body = body_of(event)
    assert framing.kind_of(body) == "sampler.rate"
    assert json.loads(body) == {"kind": "sampler.rate", "pid": None, "ppid": None, "cpu": None,
                                "proc": None, "data": {"hz": 50.0}}


def test_server_stopping_has_no_id_in_sse_and_is_one_line_in_ndjson() -> None:
    sse = server_stopping("sse").decode()
    assert sse.startswith("event: server.stopping\ndata: ") and "id:" not in sse
    assert sse.endswith("\n\n")
    line = server_stopping("ndjson")
    assert line.count(b"\n") == 1 and json.loads(line)["kind"] == "server.stopping"


def test_emit_writes_the_shape_that_encode_frame_makes() -> None:
    """The reporter's hot path builds JSON by hand: it must be the documented shape."""
    read_fd, channel = reporter.Channel.open()
    saved = reporter._channel
    reporter._channel = channel
    try:
        reporter.emit("queue.get", depth=1, item="é")
        reporter.emit("big", blob="z" * 5000)
    finally:
        reporter._channel = saved
        os.close(channel.fd)
    raw = os.read(read_fd, 65536)
    os.close(read_fd)
    frames = unframe_all(raw)  # whole frames only: it asserts each length
    assert len(frames) == 2
    small, big = (json.loads(body) for _, body in frames)
    assert list(small) == ["kind", "pid", "ppid", "cpu", "proc", "data"]
    assert small["kind"] == "queue.get" and small["pid"] == os.getpid()
    assert small["ppid"] == os.getppid() and small["data"] == {"depth": 1, "item": "é"}
    assert big["kind"] == "big" and big["data"]["truncated"] is True
    assert all(len(framing.encode_frame(t, json.loads(b))) <= framing.PIPE_BUF
               for t, b in frames)


def test_emit_names_the_thread_and_follows_a_renamed_process() -> None:
    """The cached pieces of emit(): a thread's event carries tid and thread, and a process
    renamed between two events is named by its new name in the second."""
    import multiprocessing
    import threading

    read_fd, channel = reporter.Channel.open()
    saved, process = reporter._channel, multiprocessing.current_process()
    name = process.name
    reporter._channel = channel
    try:
        reporter.emit("a")
        thread = threading.Thread(target=reporter.emit, args=("b",), kwargs={"n": 1},
                                  name="helper")
        thread.start()
        thread.join()
        process.name = "renamed-é"
        reporter.emit("c")
    finally:
        process.name = name
        reporter._channel = saved
        os.close(channel.fd)
    raw = os.read(read_fd, 65536)
    os.close(read_fd)
    a, b, c = (json.loads(body) for _, body in unframe_all(raw))
    assert list(a) == ["kind", "pid", "ppid", "cpu", "proc", "data"] and a["proc"] == name
    assert list(b) == ["kind", "pid", "ppid", "cpu", "proc", "tid", "thread", "data"]
    assert b["thread"] == "helper" and b["tid"] != os.getpid() and b["data"] == {"n": 1}
    assert c["proc"] == "renamed-é" and c["kind"] == "c" and c["data"] == {}


def test_a_fork_child_names_its_own_pid_in_a_kind_its_parent_emitted() -> None:
    """emit() caches each kind's head with the pid in it: a fork child must not inherit
    its parent's (os.fork, as multiprocessing's fork start method does)."""
    read_fd, channel = reporter.Channel.open()
    saved = reporter._channel
    reporter._channel = channel
    try:
        reporter.emit("a", n=1)
        child = os.fork()
        if child == 0:  # the child: one event, then out without running pytest's exit
            reporter.emit("a", n=2)
            os._exit(0)
        _, status = os.waitpid(child, 0)
        reporter.emit("a", n=3)
    finally:
        reporter._channel = saved
        os.close(channel.fd)
    raw = os.read(read_fd, 65536)
    os.close(read_fd)
    events = [json.loads(body) for _, body in unframe_all(raw)]
    assert status == 0
    assert [(e["pid"], e["ppid"], e["data"]["n"]) for e in events] == [
        (os.getpid(), os.getppid(), 1), (child, os.getpid(), 2), (os.getpid(), os.getppid(), 3)]


def test_an_orphans_next_event_names_its_new_parent() -> None:
    """emit() caches the ppid in each kind's head: once the parent is gone, the next event
    must say the process it was re-parented to (os.getppid() is asked every time)."""
    read_fd, channel = reporter.Channel.open()
    said_r, said_w = os.pipe()
    saved = reporter._channel
    reporter._channel = channel
    try:
        parent = os.fork()
        if parent == 0:  # the parent-to-be-gone
            if os.fork() == 0:  # the orphan-to-be
                # Asked before the parent is told to go: asked after, a preempted orphan
                # could read its new parent here and wait for a change that never comes
                # (the 120 s timeout of a clean-clone run beside a CPU hog).
                mine = os.getppid()
                reporter.emit("a", n=1)
                os.write(said_w, b"x")
                while os.getppid() == mine:  # until re-parented (the parent exits at once)
                    os.sched_yield()
                reporter.emit("a", n=2)
                os.write(said_w, b"%d %d" % (mine, os.getppid()))
                os._exit(0)
            os.read(said_r, 1)
            os._exit(0)
        os.waitpid(parent, 0)
        os.close(said_w)
        said = b""
        while chunk := os.read(said_r, 100):
            said += chunk
    finally:
        reporter._channel = saved
        os.close(channel.fd)
        os.close(said_r)
    old, new = (int(x) for x in said.split())  # the "x" went to the parent
    raw = os.read(read_fd, 65536)
    os.close(read_fd)
    first, second = (json.loads(body) for _, body in unframe_all(raw))
    assert old == parent and new != parent
    assert (first["ppid"], first["data"]) == (parent, {"n": 1})
    assert (second["ppid"], second["data"]) == (new, {"n": 2})


def test_data_json_is_to_json_text_for_every_kind_of_value() -> None:
    """emit()'s cheaper encoder (one C encoder made once) writes what to_json wrote."""

    class Thing:
        def __repr__(self) -> str:
            return "Thing()"

    values: list[object] = [
        {"i": 5, "pad": ""},
        {"s": 'é\n"\\', "n": None, "t": True, "f": 1.5, "nan": float("nan"),
         "inf": float("-inf"), "big": 10**30, "nested": [1, (2, 3), {"k": Thing()}],
         1: 2, 2.5: "x", None: 0, "jp": "日本"},
        {"thing": Thing(), "set": {1}},
    ]
    for value in values:
        assert framing.data_json(value) == framing.to_json(value)
    circular: dict[str, object] = {}
    circular["self"] = circular
    for encode in (framing.data_json, framing.to_json):
        try:
            encode(circular)
        except ValueError as e:
            assert "Circular" in str(e)
        else:
            raise AssertionError("a circular structure was encoded")
