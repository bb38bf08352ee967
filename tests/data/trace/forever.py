"""Never returns: only a cancel (or a signal) ends it."""
import time
from multiprocessing import Process


def spin():
    while True:
        time.sleep(0.1)


if __name__ == "__main__":
    for _ in range(2):
        Process(target=spin).start()
    print("ready", flush=True)
    while True:
        time.sleep(0.1)
