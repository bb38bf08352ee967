"""Ctrl-C (SIGINT to the whole foreground group): the child says so, the main dies of it."""
import time
from multiprocessing import Process


def work():
    try:
        print("child ready", flush=True)
        time.sleep(60)
    except KeyboardInterrupt:
        print("child interrupted", flush=True)


if __name__ == "__main__":
    p = Process(target=work)
    p.start()
    print("ready", flush=True)
    time.sleep(60)  # the main's own KeyboardInterrupt comes here
