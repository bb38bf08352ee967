"""Every multiprocessing primitive `procscope trace` reports, each used so that it shows.

Two workers wait for a Lock the main holds until both are there, then take turns on it,
take an RLock twice, a Semaphore of one, wait for an Event the main sets once both are
waiting (each says where it is on a SimpleQueue first), meet at a Barrier, count in a
Value under its lock, write to a Manager's dict, take jobs from a JoinableQueue and put
results on a Queue and a SimpleQueue; the
first one waits on a Condition the main notifies, after telling it so through a Pipe. Then
a Pool and a ProcessPoolExecutor square a few numbers. The output is the same every run.
"""

import multiprocessing as mp
import os
import time
from concurrent.futures import ProcessPoolExecutor


def square(x):
    return x * x


def worker(n, lock, rlock, sem, ready, cond, barrier, jobs, results, lines, conn, counter, shared):
    lines.put(f"worker {n} at the lock")
    with lock:  # held by the main until both are here; then one waits for the other
        time.sleep(0.1)
    with rlock:  # noqa: SIM117 (taken twice: the RLock re-entered)
        with rlock:
            pass
    with sem:
        time.sleep(0.05)
    lines.put(f"worker {n} at ready")
    ready.wait()
    barrier.wait()
    with counter.get_lock():
        counter.value += 1
    shared[n] = os.getpid()
    if n == 0:
        with cond:
            conn.send("waiting")  # the main takes cond only once wait() has let it go
            cond.wait(timeout=10)
    while True:
        job = jobs.get()
        if job is None:
            jobs.task_done()
            break
        results.put(job * 10)
        jobs.task_done()
    lines.put(f"worker {n} done")


def main():
    lock = mp.Lock()
    rlock = mp.RLock()
    sem = mp.Semaphore(1)
    ready = mp.Event()
    cond = mp.Condition()
    barrier = mp.Barrier(2)
    jobs = mp.JoinableQueue()
    results = mp.Queue()
    lines = mp.SimpleQueue()
    here, there = mp.Pipe()
    counter = mp.Value("i", 0)
    manager = mp.Manager()
    shared = manager.dict()
    workers = [mp.Process(target=worker, name=f"worker-{n}",
                          args=(n, lock, rlock, sem, ready, cond, barrier, jobs, results, lines,
                                there, counter, shared)) for n in range(2)]
    with lock:
        for w in workers:
            w.start()
        print(sorted(lines.get() for _ in workers))
        time.sleep(0.3)  # both are in acquire() by now, even on a busy machine
    print(sorted(lines.get() for _ in workers))
    time.sleep(0.3)  # both are in ready.wait() by now
    ready.set()
    print("worker 0 says", here.recv())
    with cond:
        cond.notify_all()
    for job in range(4):
        jobs.put(job)
    for _ in workers:
        jobs.put(None)
    jobs.join()
    print("results", sorted(results.get() for _ in range(4)))
    print(sorted(lines.get() for _ in workers))
    for w in workers:
        w.join()
    print("counter", counter.value, "shared", len(shared))
    manager.shutdown()
    pool = mp.Pool(2)
    with pool:
        print("pool", pool.map(square, range(4)))
    executor = ProcessPoolExecutor(2)
    with executor:
        print("executor", list(executor.map(square, range(3))))


if __name__ == "__main__":
    main()
