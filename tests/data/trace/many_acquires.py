"""A Lock taken and released 20,000 times in a loop: more events than a process sends one by
one (procscope counts the rest, `prims.tally`, and the page says so)."""

from multiprocessing import Lock

if __name__ == "__main__":
    lock = Lock()
    for _ in range(20_000):
        with lock:
            pass
    print("done")
