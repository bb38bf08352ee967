"""sys.exit(3) from the main while a child has exited 5."""
import sys
from multiprocessing import Process


def work():
    sys.exit(5)


if __name__ == "__main__":
    p = Process(target=work)
    p.start()
    p.join()
    print("child exit code", p.exitcode)
    sys.exit(3)
