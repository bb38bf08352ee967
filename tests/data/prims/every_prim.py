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
    with rlock:
        with rlock:
            pass


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
    with ctx.Pool(2) as pool:
        print("map:", pool.map(square, range(5)))
        print("apply:", pool.apply(square, (7,)))
        print("starmap:", pool.starmap(add, [(1, 2), (3, 4)]))
        print("imap:", list(pool.imap(square, [2, 3])))
        print("imap_unordered:", sorted(pool.imap_unordered(square, [4, 5])))
        print("apply_async:", pool.apply_async(add, (5, 6)).get())
        print("map_async:", pool.map_async(square, [8]).get())


if __name__ == "__main__":
    main(sys.argv[1])
