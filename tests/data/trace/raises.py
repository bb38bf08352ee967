"""Raises in the main after a child has run: the traceback and exit code 1 are python's."""
from multiprocessing import Process


def work():
    print("child ran", flush=True)


if __name__ == "__main__":
    p = Process(target=work)
    p.start()
    p.join()
    raise ValueError("the program's own error")
