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
