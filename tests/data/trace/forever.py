"""Never returns: only a cancel (or a signal) ends it."""
import time
from multiprocessing import Process


def spin(i):
    print(f"spinning {i}", flush=True)  # so the test knows this child is running
    while True:
        time.sleep(0.1)


if __name__ == "__main__":
    for i in range(2):
        Process(target=spin, args=(i,)).start()
    print("ready", flush=True)
    while True:
        time.sleep(0.1)
