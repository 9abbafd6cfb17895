"""A busy program for the outage test: one ``app.tick`` span (with a sqlite3 query inside) per
iteration until ``$APP_DIR/stop`` exists. Each iteration's duration is written to
``$APP_DIR/timings.jsonl`` as ``[wall_ns, duration_ns]``; the last line of stdout is the count."""

import json
import os
import sqlite3
import time

import ats

app_dir = os.environ["APP_DIR"]
stop = os.path.join(app_dir, "stop")
db = sqlite3.connect(":memory:")
db.execute("CREATE TABLE t (x INTEGER)")
n = 0
with open(os.path.join(app_dir, "timings.jsonl"), "w") as out:
    while not os.path.exists(stop) and n < 200_000:
        t0 = time.perf_counter_ns()
        with ats.span("app.tick", i=n):
            db.execute(f"INSERT INTO t VALUES ({n})")
        dt = time.perf_counter_ns() - t0
        out.write(json.dumps([time.time_ns(), dt]) + "\n")
        n += 1
        time.sleep(0.001)
print(n)
