"""The primitives used the less usual ways: from threads, handed to a Pool's
initializer, in a hot loop (past the budget), or never imported at all (subclassed: subclassed.py).

    python odd_uses.py START_METHOD threads|initializer|blocking|threadpool|hot|nothing
"""

import sys


def threads(mp):
    import threading

    lock = mp.Lock()
    done = []

    def work(n):
        with lock:
            done.append(n)

    pool = [threading.Thread(target=work, args=(n,), name=f"t{n}") for n in range(4)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    print("threads:", sorted(done))


_shared = None


def _init(lock):
    global _shared
    _shared = lock


def _locked(n):
    with _shared:
        return n + 1


def initializer(mp):
    guard = mp.Lock()
    with mp.Pool(2, initializer=_init, initargs=(guard,)) as pool:
        print("initializer:", pool.map(_locked, range(4)))


def _blocked(pid):
    """Until process `pid`'s main thread sleeps in a read (Linux's /proc: a pipe's, a
    socket pair's)."""
    import time

    while True:
        with open(f"/proc/{pid}/wchan") as f:
            if "read" in f.read():  # (anon_)pipe_read, unix_stream_read_generic
                return
        time.sleep(0.005)


def _waiter(conn, q, ready):
    ready.set()
    print("child got:", conn.recv())
    ready.set()
    print("child got:", q.get())


def blocking(mp):
    """A recv() and a get() that really wait: the main sends only once the child sleeps
    in the pipe's read."""
    here, there = mp.Pipe()
    items = mp.Queue()
    ready = mp.Event()
    p = mp.Process(target=_waiter, args=(there, items, ready))
    p.start()
    ready.wait()
    ready.clear()
    _blocked(p.pid)
    here.send("ping")
    ready.wait()
    _blocked(p.pid)
    items.put("job")
    p.join()


def threadpool(mp):
    from multiprocessing.pool import ThreadPool

    with ThreadPool(2) as threads:
        print("threadpool:", list(threads.imap(abs, [-1, -2])), threads.map(abs, [-3]))


HOT = 20000


def hot(mp):
    spin = mp.Lock()
    for _ in range(HOT):
        spin.acquire()
        spin.release()
    print("hot:", HOT)


def nothing(mp):
    import json

    print(json.dumps(sorted(m for m in sys.modules
                            if m.startswith(("multiprocessing.", "concurrent.", "procscope")))))


if __name__ == "__main__":
    method, case = sys.argv[1], sys.argv[2]
    if case == "nothing":
        nothing(None)
    else:
        import multiprocessing

        multiprocessing.set_start_method(method)
        globals()[case](multiprocessing)
