"""A small program that knows nothing about ATS: run it with `ats-run python examples/app.py`.

Its queries carry literal values (an e-mail address, a card number) and a secret in a
comment; none of them reaches the ATS store.
"""

import sqlite3

db = sqlite3.connect(":memory:")
db.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT, plan TEXT, card TEXT)")
db.executemany("INSERT INTO users (email, plan, card) VALUES (?, ?, ?)",
               [("alice@example.com", "pro", "4111111111111111"), ("bob@example.com", "free", None)])
db.execute("UPDATE users SET plan = 'enterprise' WHERE email = 'alice@example.com' /* api_key=sk-test-123456 */")
rows = db.execute("SELECT id, plan FROM users WHERE id IN (1, 2, 3) ORDER BY id").fetchall()
try:
    db.execute("SELECT * FROM invoices WHERE total > 100")
except sqlite3.OperationalError as e:
    print("expected error:", e)
print("users:", rows)
