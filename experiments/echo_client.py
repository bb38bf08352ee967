"""The echo server's clients (socket_server): the tutorial's client, with scripted lines.

Each client is a process of the run: it connects to the server on 127.0.0.1, sends
`messages` lines, reads each upper-cased echo, thinks, and sends the next; what it waited
for each reply is drawn on its lane (wait.start / wait.end). The server's main reaps each
the moment it exits (reap_as_they_exit).
"""

from __future__ import annotations

import socket
import time
from multiprocessing.connection import wait
from typing import Any

from procscope.pipe.reporter import emit


def client(name: str, port: int, messages: int, think_time: float, timeout: float,
           results: Any, first_waits_for: tuple[str, str], go: Any) -> None:
    """Runs in each client: the tutorial's client, with scripted lines instead of input().

    `first_waits_for` is what its first reply waits for, in words (English, Chinese):
    before a handler echoes the first line, a pool process must take the connection (pool),
    or the connection's own handler process must start (process_per_connection). `go` is
    set once the server can serve: in the tutorial the clients are started by hand, after
    the server."""
    ok = 0
    first_wait = None
    try:
        if not go.wait(timeout):
            raise RuntimeError("the server never said it was ready")
        phone = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        phone.settimeout(timeout)
        phone.connect(("127.0.0.1", port))
        emit("conn.open", port=phone.getsockname()[1])
        for i in range(messages):
            if i:
                time.sleep(think_time)
            cmd = "%s says hello #%d" % (name, i + 1)
            emit("conn.wait", message=i + 1)
            # Drawn as waiting: with a Pool busy with 4 connections, the 5th client's reply
            # waits for a pool process to be free.
            waits_for, waits_for_zh = first_waits_for if i == 0 else \
                ("its handler to echo it", "它的处理者回显")
            emit("wait.start", call="phone.recv(1024)", waits_for=waits_for,
                 waits_for_zh=waits_for_zh)
            sent = time.monotonic()
            phone.send(cmd.encode("utf8"))
            data = b""
            while len(data) < len(cmd):
                chunk = phone.recv(1024)
                if not chunk:
                    raise ConnectionError("the server closed the connection")
                data += chunk
            waited = time.monotonic() - sent
            emit("wait.end")
            if first_wait is None:
                first_wait = waited
            emit("conn.reply", message=i + 1, waited=round(waited, 4))
            print(data.decode("utf-8"))
            ok += data.decode("utf-8") == cmd.upper()
        phone.close()
    finally:
        results.put((name, ok, first_wait))


def client_number(record: tuple[str, int, float | None]) -> int:
    """client-10 sorts after client-9."""
    return int(record[0].rsplit("-", 1)[1])


def reap_as_they_exit(procs: list[Any]) -> None:
    """Runs in the experiment's main process, in a thread: joins each client the moment it
    exits. The tutorial's clients are other programs, nobody's children; here they are the
    server's, and joined only at the end they would be drawn as zombies meanwhile, which is
    not this lesson. (Only reaping: the page folds the thread into the main's lane.)"""
    alive = list(procs)
    while alive:
        ended = wait([p.sentinel for p in alive])
        for p in [p for p in alive if p.sentinel in ended]:
            p.join()
            alive.remove(p)
