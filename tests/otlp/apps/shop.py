"""A program run under ats-run: sqlite3 queries with literals, one ATS span, a log record, a metric.

Prints one JSON line: the ids of its ``app.checkout`` span.
"""

import json
import os
import sqlite3

import ats

with ats.span("app.checkout", order_id=17) as span:
    db = sqlite3.connect(os.path.join(os.environ["APP_DIR"], "shop.db"))
    db.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT, card TEXT)")
    db.execute("INSERT INTO users (email, card) VALUES ('carol.secret@example.org', '4111111111111111')")
    db.execute("SELECT id FROM users WHERE email = 'carol.secret@example.org' /* password=hunter2-zebra */")
    try:
        db.execute("SELECT * FROM no_such_table WHERE token = 'tok-99-balloon'")
    except sqlite3.OperationalError:
        pass
    db.commit()
    db.close()
    ats.emit("app.event", severity="warn", body="payment for carol.secret@example.org retried", attempt=2)
ats.metrics.counter("app_orders_total").add(3, {"region": "eu"})
assert span.context is not None
print(json.dumps({"trace_id": span.context.trace_id, "span_id": f"{span.context.span_id:016x}"}))
