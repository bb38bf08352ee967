"""Ctrl-C (SIGINT to the whole foreground group): the child says so, the main dies of it.

Both wait in short sleeps: CPython checks for signals after a call returns, not on the way
into time.sleep, so a Ctrl-C that lands in the few bytecodes before one long sleep (a loaded
machine preempts there) would wait for the whole sleep, plain or traced.
"""
import time
from multiprocessing import Process


def work():
    try:
        print("child ready", flush=True)
        for _ in range(600):
            time.sleep(0.1)
    except KeyboardInterrupt:
        print("child interrupted", flush=True)


if __name__ == "__main__":
    p = Process(target=work)
    p.start()
    print("ready", flush=True)
    for _ in range(600):
        time.sleep(0.1)  # the main's own KeyboardInterrupt comes here (inline: one frame)
