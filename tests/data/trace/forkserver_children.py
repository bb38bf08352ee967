"""Two children started by multiprocessing's fork server, as a user's program might."""
import multiprocessing as mp


def work(i):
    print(f"child {i} ran", flush=True)


if __name__ == "__main__":
    mp.set_start_method("forkserver")
    children = [mp.Process(target=work, args=(i,)) for i in range(2)]
    for p in children:
        p.start()
    for p in children:
        p.join()
    print("all joined", [p.exitcode for p in children], flush=True)
