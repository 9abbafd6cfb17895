"""End to end: `ats-run python app.py` on an unchanged program."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent / "e2e"
BIN = Path(sys.executable).parent
LEAKS = [b"carol.secret@example.org", b"4111111111111111", b"hunter2-zebra", b"tok-99-balloon",
         b"child-literal-77", b"fork-literal-88"]


def run_app(tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.update(APP_DIR=str(tmp_path), ATS_HOME=str(tmp_path / ".ats"), ATS_JSONL_ENABLED="true",
               ATS_TENANT="acme", ATS_WORKSPACE="shop",
               PYTHONPATH=str(HERE / "usersite"), OTEL_SERVICE_NAME="e2e-app")
    return subprocess.run([str(BIN / "ats-run"), sys.executable, str(HERE / "app.py")],
                          env=env, capture_output=True, text=True, timeout=120)


def test_ats_run_instruments_an_unchanged_program(tmp_path: Path) -> None:
    result = run_app(tmp_path)
    # The program's own behaviour is untouched: stdout, exit code, its sitecustomize.
    assert result.returncode == 3, result.stderr
    assert result.stdout.splitlines() == ["child ran", "app done True"]
    assert "ats:" not in result.stderr

    store = tmp_path / ".ats" / "ats.db"
    db = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
    rows = db.execute("SELECT name, status, json_extract(attributes, '$.\"db.statement\"'),"
                      " json_extract(attributes, '$.\"error.type\"') FROM spans_v ORDER BY start_ns").fetchall()
    statements = [r[2] for r in rows if r[0] == "driver.query"]
    assert "INSERT INTO users (email, card) VALUES (?, ?)" in statements
    assert "SELECT id FROM users WHERE email = ?" in statements
    assert ("driver.query", "error", "SELECT * FROM no_such_table WHERE token = ?", "OperationalError") in rows
    assert "SELECT ?" in statements, "child process and forked child queries are recorded"
    assert sum(1 for s in statements if s == "SELECT ?") == 2
    names = {r[0] for r in rows}
    assert {"driver.handshake", "driver.query", "driver.close"} <= names

    # No literal, secret or PII value anywhere in the store or the JSONL files.
    files = [p for p in (tmp_path / ".ats").rglob("*") if p.is_file()]
    assert any(p.suffix == ".jsonl" for p in files)
    for p in files:
        data = p.read_bytes()
        for leak in LEAKS:
            assert leak not in data, (leak, p)
    # Every JSONL line is one ATS envelope object.
    for p in files:
        if p.suffix == ".jsonl":
            for line in p.read_text().splitlines():
                obj = json.loads(line)
                assert "ts" in obj and "kind" in obj


def test_ats_trace_commands_read_what_ats_run_recorded(tmp_path: Path) -> None:
    assert run_app(tmp_path).returncode == 3
    env = dict(os.environ, ATS_HOME=str(tmp_path / ".ats"))
    ats = str(BIN / "ats")
    listed = json.loads(subprocess.run([ats, "trace", "list", "--json", "--limit", "100"], env=env,
                                       capture_output=True, text=True, check=True).stdout)
    failed = [t for t in listed if t["status"] == "error"]
    assert len(failed) == 1 and failed[0]["name"] == "driver.query" and failed[0]["spans"] == 1
    shown = json.loads(subprocess.run([ats, "trace", "show", failed[0]["trace_id"], "--json"], env=env,
                                      capture_output=True, text=True, check=True).stdout)
    assert shown["trace_id"] == failed[0]["trace_id"]
    [span] = shown["spans"]
    assert (span["name"], span["status"], span["parent_id"]) == ("driver.query", "error", None)
    attrs = span["attributes"]
    assert attrs["db.statement"] == attrs["db.query.text"] == "SELECT * FROM no_such_table WHERE token = ?"
    assert attrs["error.type"] == "OperationalError"
    assert (attrs["db.system"], attrs["db.system.name"], attrs["db.operation.name"]) == ("sqlite", "sqlite", "SELECT")
    assert attrs["db.collection.name"] == "no_such_table"
    assert attrs["db.sqlx.air_id"].startswith("air:Q-")
    text = subprocess.run([ats, "trace", "show", failed[0]["trace_id"]], env=env, capture_output=True,
                          text=True, check=True).stdout
    assert "driver.query" in text and "OperationalError" in text

    # The statements that carried the literals and the secret, as `ats trace show` gives them.
    shown_all = {}
    for trace in listed:
        out = subprocess.run([ats, "trace", "show", trace["trace_id"], "--json"], env=env,
                             capture_output=True, text=True, check=True).stdout
        text = subprocess.run([ats, "trace", "show", trace["trace_id"]], env=env,
                              capture_output=True, text=True, check=True).stdout
        for leak in LEAKS:
            assert leak.decode() not in out and leak.decode() not in text, leak
        for span in json.loads(out)["spans"]:
            shown_all.setdefault(span["attributes"].get("db.statement"), []).append(span)
    [insert] = shown_all["INSERT INTO users (email, card) VALUES (?, ?)"]
    [select] = shown_all["SELECT id FROM users WHERE email = ?"]
    for span, operation in ((insert, "INSERT"), (select, "SELECT")):
        assert (span["name"], span["status"], span["parent_id"]) == ("driver.query", "ok", None)
        a = span["attributes"]
        assert (a["db.system"], a["db.system.name"], a["db.namespace"]) == ("sqlite", "sqlite", "app.db")
        assert (a["db.operation"], a["db.operation.name"], a["db.collection.name"]) == (operation, operation, "users")
        assert a["db.query.text"] == a["db.statement"] and a["db.query.summary"] == f"{operation} users"
        assert (a["sqlx.tenant"], a["sqlx.workspace"]) == ("acme", "shop")
        assert a["db.sqlx.air_id"].startswith("air:Q-")
        assert span["start_ns"] <= span["end_ns"]
    assert len(shown_all["SELECT ?"]) == 2  # the child process's and the forked child's


def test_option_parsing_fast_path_matches_argparse() -> None:
    from ats import run

    cases = [
        ["python", "app.py", "--home", "x"],
        ["--home", "/h", "python", "-c", "pass"],
        ["--home=/h", "--service-name", "svc", "--", "python", "--config", "y"],
        ["--config", "a.toml", "--disable-plugins", "sqlite3,x", "prog"],
        ["--", "--home"],
        [],
    ]
    for argv in cases:
        fast = run._parse_fast(argv)
        assert fast is not None, argv
        args = run._parser().parse_args(argv)
        command = list(args.command)
        if command and command[0] == "--":
            command = command[1:]
        slow = {env: v for opt, env in run._OPTIONS.items() if (v := getattr(args, opt[2:].replace("-", "_")))}
        assert fast == (slow, command), argv
    # Abbreviations, help and mistakes go to argparse.
    assert run._parse_fast(["--serv", "x", "prog"]) is None
    assert run._parse_fast(["--help"]) is None
    assert run._parse_fast(["--home"]) is None
    assert run._parse(["--serv", "svc", "prog", "arg"]) == ({"OTEL_SERVICE_NAME": "svc"}, ["prog", "arg"])
    env = run.build_environment({"ATS_HOME": "/h"}, {"PYTHONPATH": f"a{os.pathsep}{run.BOOTSTRAP_DIR}"})
    assert env == {"PYTHONPATH": os.pathsep.join([run.BOOTSTRAP_DIR, "a"]), "ATS_HOME": "/h"}


def test_ats_run_hands_the_process_over_pid_signals_and_initialises_once(tmp_path: Path) -> None:
    import signal

    program = (
        "import os, signal, sys, time\n"
        "import ats, ats.auto\n"  # a second way in: still the one runtime ats-run started
        "rt = ats._runtime.current()\n"
        "assert rt is not None and ats.init() is rt\n"
        "flushers = [t for t in os.listdir('/proc/self/task')\n"
        "            if open(f'/proc/self/task/{t}/comm').read().strip() == 'ats-flusher']\n"
        "signal.signal(signal.SIGUSR1, lambda *_: (print('usr1', flush=True), sys.exit(7)))\n"
        "print(os.getpid(), len(flushers), flush=True)\n"
        "time.sleep(60)\n"
    )
    env = dict(os.environ, ATS_HOME=str(tmp_path / ".ats"))
    proc = subprocess.Popen([str(BIN / "ats-run"), sys.executable, "-c", program], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline().split()
    assert line == [str(proc.pid), "1"], proc.stderr.read() if proc.stderr else ""
    proc.send_signal(signal.SIGUSR1)
    assert proc.wait(timeout=30) == 7
    assert proc.stdout.read() == "usr1\n"

    # A signal the program leaves alone ends it as it would without ATS.
    proc = subprocess.Popen([str(BIN / "ats-run"), sys.executable, "-c",
                             "import os, time; print(os.getpid(), flush=True); time.sleep(60)"],
                            env=env, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == str(proc.pid)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == -signal.SIGTERM


def test_import_ats_auto_instruments_from_code(tmp_path: Path) -> None:
    program = (
        "import ats.auto, importlib, sqlite3, ats\n"
        "importlib.reload(ats.auto)\n"  # importing it again does nothing
        "c = sqlite3.connect(':memory:'); c.execute(\"SELECT 'auto-literal-5'\"); c.close()\n"
        "print(ats._runtime.current().config.service.name)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ATS_", "OTEL_"))}
    env.update(ATS_HOME=str(tmp_path / ".ats"), OTEL_SERVICE_NAME="auto-app")
    result = subprocess.run([sys.executable, "-c", program], env=env, capture_output=True, text=True, timeout=60)
    assert (result.returncode, result.stdout, result.stderr) == (0, "auto-app\n", "")
    db = sqlite3.connect(f"file:{tmp_path / '.ats' / 'ats.db'}?mode=ro", uri=True)
    assert db.execute("SELECT name, json_extract(attributes, '$.\"db.statement\"') FROM spans_v"
                      " ORDER BY start_ns").fetchall() == [
        ("driver.handshake", None), ("driver.query", "SELECT ?"), ("driver.close", None)]
    assert b"auto-literal-5" not in b"".join(p.read_bytes() for p in (tmp_path / ".ats").rglob("*") if p.is_file())


def test_the_readmes_first_command_on_the_bundled_example(tmp_path: Path) -> None:
    """The README's first command as written, minus the install this test environment already did."""
    repo = HERE.parent.parent
    block = (repo / "README.md").read_text().split("```bash\n", 1)[1].split("```", 1)[0].strip()
    assert block == ("bash ci/install.sh && .venv/bin/ats-run .venv/bin/python examples/app.py"
                     " && .venv/bin/ats trace list")
    (tmp_path / "examples").mkdir()
    (tmp_path / "examples" / "app.py").write_bytes((repo / "examples" / "app.py").read_bytes())
    command = block.removeprefix("bash ci/install.sh && ").replace(".venv/bin/", f"{BIN}/")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ATS_", "OTEL_"))}
    result = subprocess.run(["bash", "-c", command], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:2] == ["expected error: no such table: invoices", "users: [(1, 'enterprise'), (2, 'free')]"]
    listing = lines[2:]
    assert listing[0].split() == ["TRACE", "ID", "START", "(UTC)", "DURATION", "SPANS", "STATUS", "NAME"]
    # One trace per call (no span around them): connect, CREATE, INSERT (executemany), UPDATE,
    # SELECT and the failed SELECT; the program never closes its connection.
    rows = [row.split() for row in listing[1:]]
    assert sorted(row[-1] for row in rows) == ["driver.handshake"] + ["driver.query"] * 5
    assert [row[-2] for row in rows].count("error") == 1
    leaks = [b"alice@example.com", b"bob@example.com", b"4111111111111111", b"sk-test-123456", b"enterprise"]
    for p in (tmp_path / ".ats").rglob("*"):
        if p.is_file():
            assert not any(leak in p.read_bytes() for leak in leaks), p
