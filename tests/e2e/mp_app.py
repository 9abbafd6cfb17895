"""An unchanged program using multiprocessing (spawn, fork, pools, ProcessPoolExecutor).

Each unit of work runs its queries on a table named after its process and call, so the
test can tell from the store which process recorded what. Prints {label: [pids]} as JSON.
"""

import json
import multiprocessing as mp
import os
import sqlite3
import sys
from concurrent.futures import ProcessPoolExecutor


def work(call: str) -> int:
    db = sqlite3.connect(":memory:")
    table = f"p{os.getpid()}_{call}"
    db.execute(f"CREATE TABLE {table} (x INTEGER)")
    db.execute(f"SELECT x FROM {table} WHERE x = 42").fetchall()
    db.close()
    return os.getpid()


def main() -> None:
    pids: dict[str, list[int]] = {"parent": [work("parent")]}
    for method in ("spawn", "fork"):
        ctx = mp.get_context(method)
        proc = ctx.Process(target=work, args=(f"{method}proc",))
        proc.start()
        proc.join()
        assert proc.exitcode == 0
        pids[f"{method}-process"] = [proc.pid or 0]
        pool = ctx.Pool(2)
        pids[f"{method}-pool"] = pool.map(work, [f"{method}pool{i}" for i in range(4)])
        pool.close()
        pool.join()
        with ProcessPoolExecutor(2, mp_context=ctx) as executor:
            pids[f"{method}-executor"] = list(executor.map(work, [f"{method}exec{i}" for i in range(3)]))
    print(json.dumps(pids))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
