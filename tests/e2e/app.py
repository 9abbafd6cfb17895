"""An unchanged program: it knows nothing about ATS."""

import os
import sqlite3
import subprocess
import sys

db = sqlite3.connect(os.path.join(os.environ["APP_DIR"], "app.db"))
db.execute("CREATE TABLE IF NOT EXISTS users (id INTEGER PRIMARY KEY, email TEXT, card TEXT)")
db.execute("INSERT INTO users (email, card) VALUES ('carol.secret@example.org', '4111111111111111')")
db.execute("SELECT id FROM users WHERE email = 'carol.secret@example.org' /* password=hunter2-zebra */")
try:
    db.execute("SELECT * FROM no_such_table WHERE token = 'tok-99-balloon'")
except sqlite3.OperationalError:
    pass
db.commit()

# A child Python process (instrumented through the inherited environment).
subprocess.run([sys.executable, "-c",
                "import os, sqlite3; c = sqlite3.connect(':memory:');"
                "c.execute(\"SELECT 'child-literal-77'\"); print('child ran')"], check=True)

# A forked child (gunicorn --preload style) keeps exporting.
pid = os.fork()
if pid == 0:
    c = sqlite3.connect(":memory:")
    c.execute("SELECT 'fork-literal-88'")
    c.close()
    sys.exit(0)
os.waitpid(pid, 0)

print("app done", getattr(sys.modules.get("sitecustomize"), "USER_SITECUSTOMIZE_RAN", False))
db.close()
sys.exit(3)
