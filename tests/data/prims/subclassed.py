"""The program's own subclasses of Queue and Lock, pickled to a child.

    python subclassed.py START_METHOD
"""

import multiprocessing as mp
import sys
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Lock


class LoudQueue(Queue):
    def put(self, obj, block=True, timeout=None):
        super().put(("loud", obj), block, timeout)


class CountingLock(Lock):
    def __init__(self, *, ctx):
        super().__init__(ctx=ctx)
        self.uses = 0


def put_one(q, lock, n):
    with lock:
        q.put(n)


if __name__ == "__main__":
    ctx = mp.get_context(sys.argv[1])
    loud = LoudQueue(ctx=ctx)
    counting = CountingLock(ctx=ctx)
    with counting:
        counting.uses += 1
    p = ctx.Process(target=put_one, args=(loud, counting, 7))
    p.start()
    print("subclass:", loud.get(), counting.uses)
    p.join()
