"""The concurrent echo server: one process per connection, or a Pool that makes clients wait.

    client-1 ─┐                      process_per_connection: Process(target=work) per conn
    client-2 ─┼─► server (the main) ─┤
    ...      ─┘   accept() loop      pool: Pool(pool_size).apply_async(talk, (conn, addr))

The main is the tutorial's server: it listens on 127.0.0.1 (an ephemeral port), accepts
one connection per client and hands it to a handler. Each client is a process of the run
that sends `messages` lines, reads the upper-cased echo, thinks, and sends the next.

Handing a connected socket to another process pickles it. multiprocessing's reduction
pickles a socket as a DupFd: while a Process is being started, the fd is passed to the
child directly (inherited under fork, pass_fds under spawn, SCM_RIGHTS to the fork server
under forkserver). A Pool task is pickled later, by the pool's task-handler thread; then
DupFd dups the fd and registers it with the main's resource-sharer thread, and the worker
fetches it over a Unix socket (SCM_RIGHTS again). That works under all three start methods,
as long as the main keeps its socket open until the task has been pickled: the main closes
its copy only when the handler is done.

The clients (and their reaping) are in experiments/echo_client.py. Past 300 lines by its
lesson's declaration (SPEC, a fifth of the module): one lesson, one module.
"""

from __future__ import annotations

# Imported before the Pool forks its workers, which then have it: multiprocessing's socket
# handover (its resource sharer's authentication) imports hmac, with OpenSSL, in each
# worker on its first socket: ~30-60 ms of the first four clients' wait that is neither the
# handover nor a busy pool (measured: first handover to 4 fresh workers 28-66 ms, 3-11 ms
# with hmac already imported). Under spawn or forkserver each worker imports it anyway.
import hmac  # noqa: F401
import os
import socket
import threading
import time
from multiprocessing import Event, Process, Queue, resource_sharer
from queue import Empty
from typing import Any

from procscope.experiments import lesson_words
from procscope.experiments.echo_client import client, client_number, reap_as_they_exit
from procscope.experiments.measure import max_overlap
from procscope.experiments.pool_watch import (
    LOST_TASK_MARKS,
    WATCH_THREAD,
    LostTaskWatch,
    TaskLost,
    lost_task_moment,
    task_done,
    task_started,
    watched_pool,
)
from procscope.experiments.spec import Experiment, KeyMoment, Param
from procscope.experiments.words import Lang, Outcome, is_number, number, say
from procscope.pipe.reporter import emit

WORDS = lesson_words.read(__name__)  # every string of the lesson: NAME.toml

# A handler's report: (conn index, pid, start_ns, end_ns, client name, messages echoed).
HandlerRecord = tuple[int, int, int, int, str, int]


def talk(conn: socket.socket, client_addr: tuple[str, int], index: int) -> HandlerRecord:
    """Runs in a handler (a pool worker, or a process of its own): echo until EOF."""
    start = time.monotonic_ns()
    task_started(index - 1)  # a pool worker: so that the main can tell if it dies mid-task
    print("进程pid: %s" % os.getpid())
    emit("handler.start", conn=index, peer=client_addr[1])
    client = "?"
    echoed = 0
    while True:
        try:
            msg = conn.recv(1024)
            if not msg:
                break
            if echoed == 0:
                client = msg.decode("utf-8", "replace").split(" ", 1)[0]
                # The handler's bar, named after the client it serves (its first line
                # says who it is): on a pool worker's lane, client after client.
                emit("task.start", task=index, label="serving %s" % client,
                         label_zh="服务 %s" % client)
            print(msg)
            conn.send(msg.upper())
            echoed += 1
        except OSError as e:
            # The tutorial's `except Exception: pass` would spin forever on a dead
            # connection; a handler that stops is the fix.
            emit("handler.error", conn=index, error=str(e))
            break
    conn.close()
    end = time.monotonic_ns()
    if echoed:
        emit("task.end", task=index)
    emit("handler.end", conn=index, client=client, echoed=echoed)
    task_done(index - 1)
    return index, os.getpid(), start, end, client, echoed


def work(conn: socket.socket, client_addr: tuple[str, int], index: int, records: Any) -> None:
    """Runs in a handler process of its own (process_per_connection)."""
    records.put(talk(conn, client_addr, index))


def gather(queue: Any, count: int, senders: list[Any], timeout: float) -> list[Any]:
    """Runs in the experiment's main process: up to `count` items, fewer if senders died.

    Drained before the senders are joined (a process that put on a Queue cannot exit
    before its items are read).
    """
    items: list[Any] = []
    deadline = time.monotonic() + timeout
    while len(items) < count and time.monotonic() < deadline:
        try:
            items.append(queue.get(timeout=0.1))
        except Empty:
            if not any(s.is_alive() for s in senders) and queue.empty():
                break
    return items


def accept_all(phone: socket.socket, count: int, clients: list[Any]
               ) -> list[tuple[socket.socket, tuple[str, int]]]:
    """Runs in the experiment's main process: accept `count` connections.

    Polls, so that clients that died before connecting end the wait instead of hanging it.
    """
    phone.settimeout(0.1)
    accepted: list[tuple[socket.socket, tuple[str, int]]] = []
    while len(accepted) < count:
        try:
            conn, client_addr = phone.accept()
        except TimeoutError:
            if not any(c.is_alive() for c in clients):
                raise RuntimeError("%d of %d clients never connected"
                                   % (count - len(accepted), count)) from None
            continue
        conn.settimeout(None)
        print(conn)
        emit("conn.accept", conn=len(accepted) + 1, peer=client_addr[1])
        accepted.append((conn, client_addr))
    return accepted


def serve_with_pool(pool: Any, phone: socket.socket, count: int, clients: list[Any],
                    timeout: float, handler_records: list[HandlerRecord],
                    handler_errors: list[str]) -> None:
    """Runs in the experiment's main process: the tutorial's accept loop, each connection
    handed to the Pool, then every handler's record."""
    pending = []
    for index, (conn, client_addr) in enumerate(accept_all(phone, count, clients), 1):
        emit("conn.submit", conn=index)
        pending.append((conn, pool.apply_async(talk, args=(conn, client_addr, index))))
    phone.close()
    emit("server.close")
    pool.close()
    for conn, res in pending:
        try:
            handler_records.append(res.get(timeout=timeout))
        except TaskLost:
            raise
        except Exception as e:
            handler_errors.append("%s: %s" % (type(e).__name__, e))
        # Only now: the task (and the socket in it) was pickled long ago.
        conn.close()
    pool.join()


def main(params: Any, report: Any) -> dict[str, Any]:
    """Runs in the experiment's main process: the server."""
    think_time = params.think_time * params.time_scale
    # Generous: the last client may wait for every wave of handlers before its turn.
    waves = -(-params.clients // params.pool_size)
    timeout = 30 + (waves + 1) * params.messages * think_time

    phone = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    phone.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    phone.bind(("127.0.0.1", 0))  # an ephemeral port, not the tutorial's 8080
    # The tutorial's listen(5) would make a 6th simultaneous connect wait for a SYN retry
    # (1 s); the backlog is not the lesson, so it holds every client.
    phone.listen(max(5, params.clients))
    port = phone.getsockname()[1]
    emit("server.listen", port=port, mode=params.mode)

    results: Any = Queue()
    records: Any = Queue()
    first_waits_for = (("a free pool process to take the connection", "一个空闲的池进程接手连接")
                       if params.mode == "pool" else
                       ("its handler process to start and echo it", "它的处理进程启动并回显"))
    go = Event()  # set when the server can serve (its Pool's workers are up)
    # Clients first, while this process has no threads yet (the Pool starts three).
    clients = [Process(target=client, name="client-%d" % (i + 1),
                       args=("client-%d" % (i + 1), port, params.messages, think_time,
                             timeout, results, first_waits_for, go))
               for i in range(params.clients)]
    for c in clients:
        c.start()
    reaper = threading.Thread(target=reap_as_they_exit, args=(clients,), name="client-reaper")
    reaper.start()

    handler_records: list[HandlerRecord] = []
    handler_errors: list[str] = []
    start_time = time.time()
    try:
        if params.mode == "process_per_connection":
            go.set()  # a handler process is started per connection, as it comes
            handlers = []
            for index, (conn, client_addr) in enumerate(accept_all(phone, params.clients,
                                                                   clients), 1):
                p = Process(target=work, args=(conn, client_addr, index, records),
                            name="handler-%d" % index)
                p.start()
                conn.close()  # the handler has its own copy now
                handlers.append(p)
            phone.close()
            emit("server.close")
            handler_records.extend(gather(records, len(handlers), handlers, timeout))
            for p in handlers:
                p.join()
                if p.exitcode != 0:
                    handler_errors.append("%s exited with %s" % (p.name, p.exitcode))
        else:
            # A pool worker killed mid-connection would make res.get() wait (and the client
            # with it) until the timeout, as Pool never returns such a task (pool_watch.py):
            # the watch ends the run at once instead, saying which connection was lost.
            watch = LostTaskWatch(params.clients,
                                  ["conn %d" % (i + 1) for i in range(params.clients)],
                                  ["连接 %d" % (i + 1) for i in range(params.clients)])
            try:
                with watched_pool(watch, params.pool_size) as pool:
                    # The tutorial's Pool is up before any client comes: the clients' waits
                    # are then for a free pool process, not for the pool to start.
                    if not watch.wait_for_workers(params.pool_size, 30):
                        raise RuntimeError("the Pool's workers did not start within 30 s")
                    go.set()
                    serve_with_pool(pool, phone, params.clients, clients, timeout,
                                    handler_records, handler_errors)
            finally:
                resource_sharer.stop(timeout=5)
    except BaseException:
        for c in clients:
            c.terminate()
            c.join()
        reaper.join()
        raise
    finally:
        phone.close()

    if handler_errors:
        for c in clients:
            c.terminate()
    client_results = gather(results, len(clients), clients, timeout)
    for c in clients:
        c.join()
    reaper.join()
    used_time = time.time() - start_time
    if handler_errors:
        raise RuntimeError("the %s server could not hand its connections over "
                           "(start method %s): %s"
                           % (params.mode, params.start_method, "; ".join(handler_errors)))
    replies_ok = sum(ok for _, ok, _ in client_results)
    print("%d/%d replies ok" % (replies_ok, params.clients * params.messages))
    handler_records.sort()
    return {
        "mode": params.mode,
        "replies_ok": replies_ok,
        "replies_expected": params.clients * params.messages,
        "max_concurrent_handlers": max_overlap([(r[2], r[3]) for r in handler_records]),
        "handler_pids": sorted({r[1] for r in handler_records}),
        "handler_processes": len({r[1] for r in handler_records}),
        "first_reply_waits": {name: None if w is None else round(w, 4)
                              for name, _, w in sorted(client_results, key=client_number)},
        "handlers": [{"conn": r[0], "pid": r[1], "client": r[4], "echoed": r[5]}
                     for r in handler_records],
        "port": port,
        "elapsed": round(used_time, 4),
    }


def outcome(r: dict[str, Any], lang: Lang) -> Outcome | None:
    """Runs in the server: replies, and how many handlers served at once."""
    if not is_number(r.get("replies_ok")):
        return None
    return {"text": say(WORDS["text"][lang], mode=r.get("mode"), ok=r["replies_ok"],
                        expected=number(r.get("replies_expected")),
                        at_once=number(r.get("max_concurrent_handlers")),
                        processes=len(r.get("handler_pids") or [])),
            "why": WORDS["why"][lang], "bad": False}


SPEC = Experiment(
    id="socket_server", words=WORDS, section="多进程实现并发套接字通信 · 使用进程池实现socket通信",
    code="""def talk(conn,client_addr):
    print('进程pid: %s' %os.getpid())
    while True:
        try:
            msg=conn.recv(1024)
            if not msg:break
            conn.send(msg.upper())
        except Exception:
            break

p=Pool(4)
while True:
    conn,client_addr=server.accept()
    p.apply_async(talk,args=(conn,client_addr))
    # Process(target=work,args=(conn,client_addr)).start()  # 一个连接一个进程""",
    params={
        "mode": Param("pool", choices=("process_per_connection", "pool")),
        "clients": Param(6, ge=1, le=32),
        "pool_size": Param(4, ge=1, le=16),
        "messages": Param(3, ge=1, le=50),
        "think_time": Param(0.5, ge=0, le=10),
    },
    marks=LOST_TASK_MARKS,
    helper_threads=(WATCH_THREAD,),
    key_moments=(
        KeyMoment({"kind": "conn.accept", "nth": 1}, {"kind": "handler.end", "nth": -1},
                  "{result.mode}: every client served in {s} s, at most "
                  "{result.max_concurrent_handlers} at once, by "
                  "{result.handler_processes} processes",
                  label_zh="{result.mode}：{s} 秒内服务完所有客户端，最多同时 "
                           "{result.max_concurrent_handlers} 个，共用了 "
                           "{result.handler_processes} 个进程"),
        lost_task_moment(),  # a pool worker killed mid-connection (clients are not pool workers)
    ),
    main=main,
    outcome=outcome,
    compare=({"mode": "process_per_connection"}, {"mode": "pool"}),
)
