"""A daemon that would run for ever: multiprocessing terminates it when the main ends."""
import time
from multiprocessing import Process


def forever():
    print("daemon started", flush=True)
    while True:
        time.sleep(0.1)


if __name__ == "__main__":
    d = Process(target=forever, daemon=True)
    d.start()
    time.sleep(0.5)
    print("main done, daemon alive:", d.is_alive())
