"""Every multiprocessing primitive procscope trace reports, used once or twice.

    python every_prim.py START_METHOD

What it prints depends on nothing but the program (no pids, no timings), so that its
output under `procscope trace` can be compared with its output without.
"""

import multiprocessing as mp
import sys


def worker(lock, rlock, q, n):
    with lock:
        q.put(n)
    with rlock:  # noqa: SIM117 (taken twice: the RLock re-entered)
        with rlock:
            pass


def child(sem, bounded, ready, cond, barrier, conn, jq, counter, numbers, d):
    with sem:
        bounded.acquire()
        bounded.release()
    ready.wait()
    with cond:
        cond.notify_all()
    barrier.wait()
    conn.send(("hello", 1))
    print("child got:", conn.recv())
    item = jq.get()
    jq.task_done()
    with counter.get_lock():
        counter.value += item
    numbers[0] = 10
    d["child"] = item


def square(x):
    return x * x


def add(a, b):
    return a + b


def main(method):
    ctx = mp.get_context(method)
    lock = ctx.Lock()
    rlock = ctx.RLock()
    q = ctx.Queue()
    procs = [ctx.Process(target=worker, args=(lock, rlock, q, i)) for i in range(3)]
    for p in procs:
        p.start()
    got = sorted(q.get() for _ in range(3))
    for p in procs:
        p.join()
    print("queue:", got)
    sem = ctx.Semaphore(2)
    bounded = ctx.BoundedSemaphore(1)
    ready = ctx.Event()
    cond = ctx.Condition()
    barrier = ctx.Barrier(2)
    parent_end, child_end = ctx.Pipe()
    jq = ctx.JoinableQueue()
    counter = ctx.Value("i", 0)
    numbers = ctx.Array("i", [1, 2, 3])
    with ctx.Manager() as manager:
        d = manager.dict()
        p = ctx.Process(target=child, args=(sem, bounded, ready, cond, barrier, child_end,
                                            jq, counter, numbers, d))
        with cond:
            p.start()
            ready.set()
            cond.wait()
        barrier.wait()
        print("main got:", parent_end.recv())
        parent_end.send("bye")
        jq.put(5)
        jq.join()
        p.join()
        print("shared:", counter.value, list(numbers), dict(d))
    ready.clear()
    with ctx.Pool(2) as pool:
        print("map:", pool.map(square, range(5)))
        print("apply:", pool.apply(square, (7,)))
        print("starmap:", pool.starmap(add, [(1, 2), (3, 4)]))
        print("imap:", list(pool.imap(square, [2, 3])))
        print("imap_unordered:", sorted(pool.imap_unordered(square, [4, 5])))
        print("apply_async:", pool.apply_async(add, (5, 6)).get())
        print("map_async:", pool.map_async(square, [8]).get())
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(2, mp_context=ctx) as executor:
        print("submit:", executor.submit(square, 9).result())
        print("executor.map:", list(executor.map(add, [1, 2], [10, 20])))


if __name__ == "__main__":
    main(sys.argv[1])
