"""Pool.imap and imap_unordered with chunks: each result handed over with its item's index."""

import multiprocessing as mp
import sys


def square(x):
    return x * x


if __name__ == "__main__":
    mp.set_start_method(sys.argv[1])
    with mp.Pool(2) as pool:
        print("imap:", list(pool.imap(square, range(7), chunksize=3)))
        print("imap_unordered:", sorted(pool.imap_unordered(square, range(7), chunksize=3)))
        print("unordered one by one:", sorted(pool.imap_unordered(square, [7, 8, 9])))
