"""Event-family registry (seed 002), the shipped envelope schema and `validate_file`."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ats import _native
from ats.registry import (
    BUILTIN_FAMILIES,
    DuplicateFamilyError,
    EventFamily,
    InvalidFamilyError,
    Registry,
    default_registry,
    validate_file,
)
from ats.schemas import ENVELOPE_SCHEMA_FILE, SchemaError, check_schema, envelope_schema, validate

import jsonschema  # noqa: E402  (a test requirement: the cross-check must run, not skip)

OBJ: dict[str, Any] = {"type": "object"}


def fam(family: str = "acme", events: tuple[str, ...] = ("acme.thing",), **kw: Any) -> EventFamily:
    args: dict[str, Any] = dict(schema=OBJ, sensitivity="S1", transmission="local_only", retention="30d",
                                owner="acme-plugin")
    args.update(kw)
    return EventFamily(family, events, **args)


# ------------------------------------------------------------------------------------ built-ins


def test_builtin_families_and_classes() -> None:
    classes = {f.family: (f.sensitivity, f.transmission, f.retention) for f in BUILTIN_FAMILIES}
    exp, loc = "explicit_operator_export", "local_only"
    assert classes == {
        # seed 000 taxonomy
        "kernel": ("S1", exp, "30d"), "sched": ("S1", exp, "30d"), "air": ("S2", exp, "30d"),
        "udr": ("S2", exp, "30d"), "driver": ("S2", exp, "30d"), "policy": ("S2", exp, "30d"),
        "cache": ("S1", exp, "30d"), "ddl": ("S2", exp, "30d"), "sec": ("S2", exp, "30d"),
        # seed 003
        "agent": ("S1", exp, "7d"), "swarm": ("S1", exp, "30d"), "consensus": ("S3", loc, "90d"),
        "memory.bridge": ("S2", exp, "30d"), "mesh": ("S1", exp, "30d"), "security": ("S3", loc, "90d"),
        "task": ("S2", exp, "30d"), "bridge": ("S2", exp, "7d"),
        # seed 004 hook points
        "session": ("S2", loc, "30d"), "tool": ("S3", loc, "30d"), "gen_ai": ("S2", exp, "30d"),
        # seed 004 span types inside a session, and Agent Trace attribution
        "decision": ("S2", loc, "30d"), "error": ("S2", loc, "30d"), "attribution": ("S2", exp, "30d"),
    }
    events = {f.family: f.events for f in BUILTIN_FAMILIES}
    assert events["driver"] == ("driver.handshake", "driver.query", "driver.prepare", "driver.close")
    assert events["sched"] == ("sched.classify", "sched.preempt", "sched.enqueue", "sched.dequeue")
    assert events["ddl"] == ("ddl.migration", "ddl.migration.rollback", "ddl.lock", "ddl.online")
    assert events["mesh"] == ("mesh.topology.change", "mesh.topology_change")
    assert events["task"] == ("task.execution", "task.assigned", "task.completed")
    assert events["session"] == ("session.start", "session.end")
    assert events["tool"] == ("tool.execute", "tool.execute.before", "tool.execute.after")
    assert (events["decision"], events["error"], events["attribution"]) == (
        ("decision",), ("error",), ("attribution.range",))
    reg = default_registry()
    assert [f.family for f in reg.families()] == sorted(classes)
    assert len(reg) == 23 and "driver" in reg and "nope" not in reg
    assert reg.lookup("agent.lifecycle") is not None and reg.lookup("agent.lifecycle").retention_days == 7  # type: ignore[union-attr]


@pytest.mark.parametrize(("name", "family"), [
    ("driver.query", "driver"),
    ("driver.query.ok", "driver"),
    ("driver.query.error", "driver"),
    ("driver.pool.wait", "driver"),  # a family owns its namespace
    ("memory.bridge.sync", "memory.bridge"),
    ("memory.bridge.sync.error", "memory.bridge"),
    ("memory.other", None),
    ("session.start", "session"),
    ("session.end", "session"),
    ("ddl.migration.start", "ddl"),
    ("ddl.migration.rollback", "ddl"),
    ("tool.execute.before", "tool"),
    ("decision", "decision"),  # a family may name one event after itself
    ("error.error", "error"),  # the stored name of a failed ``error`` span
    ("errors", None),
    ("attribution.range", "attribution"),
    # OpenTelemetry GenAI span names: "{operation} {target}"
    ("execute_tool get_weather", "gen_ai"),
    ("invoke_agent Weather bot.error", "gen_ai"),
    ("chat gpt-4o.ok", "gen_ai"),
    ("step tools", "gen_ai"),
    ("chat", "gen_ai"),
    ("invoke_agent.ok", "gen_ai"),
    ("embeddings", None),
    ("embeddings text-3", None),
    ("kernel.exec extra", None),
    ("udr.compile.ok", "udr"),
    ("app.main", None),
    ("app", None),
    ("driver", "driver"),
    ("", None),
    (".driver", None),
    ("driverx.query", None),
])
def test_lookup(name: str, family: str | None) -> None:
    reg = default_registry()
    found = reg.lookup(name)
    assert (found.family if found else None) == family
    assert reg.is_registered(name) is (family is not None)


def test_accept_counts_rejections() -> None:
    reg = default_registry()
    assert reg.accept("driver.query.ok") is True
    assert reg.accept("app.main") is False
    assert reg.accept("app.main") is False
    assert reg.accept("x") is False
    assert reg.rejections() == {"app.main": 2, "x": 1}
    assert reg.family_of("app.main") == "app" and reg.family_of("memory.bridge.sync") == "memory.bridge"


# ------------------------------------------------------------------------------------ register


def test_register_plugin_family_and_duplicates() -> None:
    reg = default_registry()
    reg.register(fam())
    assert reg.lookup("acme.thing.ok") == fam()
    with pytest.raises(DuplicateFamilyError) as e:
        reg.register(fam(events=("acme.other",), owner="someone-else"))
    assert str(e.value) == "event family 'acme' is already registered (owner: acme-plugin)"
    reg.register(fam("acme2", ("acme2.pool.wait",)))
    with pytest.raises(DuplicateFamilyError) as e:
        reg.register(fam("acme2.pool", ("acme2.pool.wait",)))
    assert str(e.value) == ("event 'acme2.pool.wait' of family 'acme2.pool' is already declared by family "
                            "'acme2' (owner: acme-plugin)")
    assert isinstance(e.value, ValueError)  # the hookspec promises ValueError
    assert "acme2.pool" not in reg  # nothing half-registered
    # a sub-family is allowed and wins for its own names (longest prefix)
    reg.register(fam("driver.pool", ("driver.pool.wait",)))
    assert reg.lookup("driver.pool.wait.ok").family == "driver.pool"  # type: ignore[union-attr]
    assert reg.lookup("driver.query").family == "driver"  # type: ignore[union-attr]
    with pytest.raises(TypeError, match="register\\(\\) takes an ats.registry.EventFamily, got dict"):
        reg.register({"family": "x"})  # type: ignore[arg-type]


@pytest.mark.parametrize(("kw", "message"), [
    (dict(family="Acme"), "event family name 'Acme' is invalid: use lower-case dotted words like 'driver' "
                          "or 'memory.bridge'"),
    (dict(events=()), "event family 'acme' declares no events"),
    (dict(events=("other.thing",)), "event family 'acme' event 'other.thing' is not under the family name "
                                    "(acme.<name>)"),
    (dict(events=("acme.thing.ok",)), "event family 'acme' event 'acme.thing.ok' ends with a status suffix; "
                                      "declare 'acme.thing' (the sinks append .ok/.error)"),
    (dict(events=("acme.a", "acme.a")), "event family 'acme' lists an event twice"),
    (dict(events="acme.thing"), "event family 'acme' events must be a list of event names, got 'acme.thing'"),
    (dict(sensitivity="S4"), "event family 'acme' sensitivity 'S4' is not one of S0, S1, S2, S3"),
    (dict(transmission="upload"), "event family 'acme' transmission 'upload' is not one of local_only, "
                                  "explicit_operator_export, approved_usage_upload"),
    (dict(sensitivity="S3", transmission="explicit_operator_export"),
     "event family 'acme' is S3 (content-bearing) so its transmission must be local_only, not "
     "explicit_operator_export"),
    (dict(sensitivity="S2", transmission="approved_usage_upload"),
     "event family 'acme' is S2; approved_usage_upload is only allowed for S0 and S1 families"),
    (dict(retention="30 days"), "event family 'acme' retention '30 days' is not a retention class like '30d' "
                                "(0d to 3650d)"),
    (dict(retention="9999d"), "event family 'acme' retention '9999d' is not a retention class like '30d' "
                              "(0d to 3650d)"),
    (dict(owner=" "), "event family 'acme' has no owner"),
    (dict(schema={"type": "string"}), 'event family \'acme\' schema must be a JSON Schema object with "type": '
                                      '"object"'),
    (dict(schema={"type": "object", "patternProperties": {}}),
     "event family 'acme' schema is not supported: #/patternProperties: keyword 'patternProperties' is not "
     "supported (supported: $ref, additionalProperties, allOf, anyOf, const, else, enum, if, items, maxItems, "
     "maxLength, maximum, minItems, minLength, minimum, not, oneOf, pattern, properties, required, then, type)"),
    (dict(schema={"type": "object", "properties": {"a": {"$ref": "http://x"}}}),
     "event family 'acme' schema is not supported: #/properties/a/$ref: only local references "
     "'#/$defs/<name>' are supported, got 'http://x'"),
])
def test_invalid_family(kw: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidFamilyError) as e:
        fam(**kw)
    assert str(e.value) == message


def test_valid_edge_classes() -> None:
    assert fam(sensitivity="S0", transmission="approved_usage_upload", retention="0d").retention_days == 0
    assert fam(events=["acme.a", "acme.b"]).events == ("acme.a", "acme.b")  # type: ignore[arg-type]


def test_default_registry_runs_the_plugin_hook() -> None:
    class Host:
        def register_event_families(self, registry: Any) -> None:
            registry.register(fam())

    reg = default_registry(Host())
    assert len(reg) == 24 and reg.is_registered("acme.thing")


# ------------------------------------------------------------------------------------ schemas


def test_envelope_schema_is_package_data_and_valid_2020_12() -> None:
    assert ENVELOPE_SCHEMA_FILE.name == "ats-4.0.0.json"
    assert ENVELOPE_SCHEMA_FILE.parent == Path(__import__("ats").__file__).parent / "schemas"
    schema = json.loads(ENVELOPE_SCHEMA_FILE.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    assert envelope_schema() == schema
    for f in BUILTIN_FAMILIES:
        jsonschema.Draft202012Validator.check_schema(dict(f.schema))


def real_lines(tmp_path: Path) -> list[str]:
    """JSONL lines of every kind the native pipeline writes today (span, log, metric)."""
    p = _native.Pipeline(jsonl_dir=str(tmp_path / "jsonl"), tenant="acme", workspace="prod-eu",
                         region="eu-west-2")
    now = time.time_ns()
    t = _native.Pipeline.new_trace_id()
    p.record_span("kernel.exec", "k", t, 1, 0, now, now + 1_500_000, 1, {"sqlx.class": "L", "f": 2.0, "b": True})
    p.record_query(1, "postgresql", "SELECT * FROM t WHERE a = 5", now, now + 1000, "UndefinedTable", t, 1,
                   component="psycopg", peer_name="db", peer_port=5432, rows=0)
    p.record_span("kernel.retry", "k", t, 2, 1, now, now + 10, 0, {"nan": float("nan"), "big": 10**30},
                  plan_hash="ph:00000000000000ab", air_id="air:Q-00000000000000cd")
    p.emit_log("policy.deny", "policy", 13, "line\nbreak \x01", now, t, 1, {"reason": "residency=eu"})
    p.metrics.counter("sqlx_policy_denies_total", "1").add(1, {"reason": "residency"})
    p.metrics.gauge("sqlx_pool_active", "1").set(2.5, {"id": "p1"})
    assert p.shutdown(10.0)
    return [line for f in sorted((tmp_path / "jsonl").glob("*.jsonl"))
            for line in f.read_text(encoding="utf-8").splitlines()]


def test_real_pipeline_output_is_valid(tmp_path: Path) -> None:
    lines = real_lines(tmp_path)
    kinds = sorted({json.loads(x)["kind"] for x in lines})
    assert kinds == ["log", "metric", "span"]
    schema = envelope_schema()
    v = jsonschema.Draft202012Validator(schema)
    for line in lines:
        doc = json.loads(line)
        assert validate(doc, schema) == []
        assert list(v.iter_errors(doc)) == []
    [f] = sorted((tmp_path / "jsonl").glob("*.jsonl"))
    report = validate_file(f)
    assert report.format_errors() == []
    assert (report.ok, report.lines, report.valid_lines, report.unregistered) == (True, len(lines), len(lines), {})


REWARD = {"ts": "2025-10-16T14:06:17.441Z", "tenant": "acme", "workspace": "w", "air_id": "air:Q-00000000000000cd",
          "plan_hash": "ph:00000000000000ab", "dialect": "mysql", "region": "eu-west-2", "kind": "reward",
          "class": "L", "latency_ms": 12.3, "cpu_ms": None, "io_bytes": 4096, "rows": 42, "success": True,
          "reward": -14.1, "context": {"dialect": "mysql", "region": "eu-west-2", "engine": "8.0.36"}}


def test_reward_line_from_seed() -> None:
    assert validate(REWARD, envelope_schema()) == []
    assert validate({**REWARD, "class": "X"}, envelope_schema()) == ['$.class: "X" is not one of "L", "B", "A", "S"']


def test_envelope_error_messages() -> None:
    s = envelope_schema()
    base = {"ts": "2025-10-16T14:01:05.345Z", "tenant": "", "workspace": "", "dialect": "", "region": "",
            "kind": "log", "evt": "policy.deny", "component": "", "severity": 9, "body": "", "attributes": {}}
    assert validate(base, s) == []
    assert validate({**base, "kind": "trace"}, s) == ['$.kind: "trace" is not one of "span", "log", "metric", "reward"']
    assert validate({**base, "ts": "2025-10-16 14:01"}, s) == [
        '$.ts: "2025-10-16 14:01" does not match ^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z$']
    assert validate({**base, "severity": 0, "extra": 1}, s) == [
        "$.severity: 0 is less than the minimum 1", "$: unexpected property 'extra'"]
    assert validate({**base, "attributes": {"a": [1]}, "trace_id": "ABC"}, s) == [
        "$.attributes.a: expected string or integer or number or boolean or null, got array",
        '$.trace_id: "ABC" does not match ^[0-9a-f]{32}$']  # in the document's key order
    missing = dict(base)
    del missing["body"]
    assert validate(missing, s) == ["$: missing required property 'body'"]
    assert validate([1], s) == ["$: expected object, got array"]


# Cross-check the home-grown validator against jsonschema on mutated real lines.
_VALUES = st.one_of(st.none(), st.booleans(), st.integers(-3, 2**64), st.floats(allow_nan=False),
                    st.text(max_size=40), st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=5), st.integers(), max_size=2))


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_validator_agrees_with_jsonschema(data: st.DataObject, tmp_path_factory: pytest.TempPathFactory) -> None:
    global _LINES
    if not _LINES:
        _LINES = [json.loads(x) for x in real_lines(tmp_path_factory.mktemp("l"))] + [REWARD]
    doc = dict(data.draw(st.sampled_from(_LINES)))
    for _ in range(data.draw(st.integers(0, 3))):
        action = data.draw(st.sampled_from(["drop", "set", "add", "nested"]))
        key = data.draw(st.sampled_from(sorted(doc)))
        if action == "drop":
            doc.pop(key, None)
        elif action == "set":
            doc[key] = data.draw(_VALUES)
        elif action == "add":
            doc[data.draw(st.text(min_size=1, max_size=8))] = data.draw(_VALUES)
        elif isinstance(doc.get(key), dict):
            inner = dict(doc[key])
            inner[data.draw(st.text(max_size=8))] = data.draw(_VALUES)
            doc[key] = inner
    schema = envelope_schema()
    ours = validate(doc, schema) == []
    theirs = jsonschema.Draft202012Validator(schema).is_valid(doc)
    assert ours == theirs, (doc, validate(doc, schema))


_LINES: list[dict[str, Any]] = []


def test_family_schema_validation_agrees_with_jsonschema() -> None:
    driver = default_registry().lookup("driver")
    assert driver is not None
    cases = [{"db.statement": "SELECT ?", "net.peer.port": 5432}, {"net.peer.port": 70000}, {"db.statement": 5},
             {"db.sqlx.air_id": "Q-1"}, {"anything": [1]}, {"server.port": 2.0}]
    v = jsonschema.Draft202012Validator(dict(driver.schema))
    for attrs in cases:
        assert (driver.validate_attributes(attrs) == []) == v.is_valid(attrs), attrs
    agent = default_registry().lookup("agent.lifecycle")
    assert agent is not None
    assert agent.validate_attributes({"state_to": "dancing"}) == [
        '$.state_to: "dancing" is not one of "initializing", "running", "idle", "busy", "error", '
        '"shutting_down", "offline"']


def test_check_schema_rejects() -> None:
    with pytest.raises(SchemaError, match="#/type: unknown type"):
        check_schema({"type": "float"})
    with pytest.raises(SchemaError, match="unresolved reference '#/\\$defs/x'"):
        check_schema({"$ref": "#/$defs/x"})
    with pytest.raises(SchemaError, match="invalid regular expression"):
        check_schema({"pattern": "("})
    with pytest.raises(SchemaError, match="a schema must be an object or a boolean, got int"):
        check_schema({"properties": {"a": 1}})
    check_schema({"$defs": {"x": {"type": "integer"}}, "oneOf": [{"$ref": "#/$defs/x"}, True], "not": False})


# ------------------------------------------------------------------------------------ validate_file


def test_validate_file_errors_with_line_numbers(tmp_path: Path) -> None:
    good = json.loads(next(x for x in real_lines(tmp_path) if '"evt":"kernel.exec.ok"' in x))
    f = tmp_path / "mixed.jsonl"
    rows = [
        json.dumps(good),
        "",
        "[1, 2]",
        json.dumps({**good, "evt": "kernel.exec", "status": "ok"}),
        json.dumps({**good, "end_ns": good["start_ns"] - 1}),
        json.dumps({**good, "evt": "app.main.ok"}),
        json.dumps({**good, "evt": "driver.query.ok", "attributes": {"net.peer.port": "5432"}}),
        json.dumps({**good, "evt": "driver.query.ok", "kind": "log"}),
        '{"ts": "2025-10',  # a killed writer's partial last line
    ]
    f.write_bytes(("\n".join(rows)).encode() + b"\n\xff\xfe\n")
    report = validate_file(f)
    assert report.format_errors() == [
        f"{f}:2: empty line",
        f"{f}:3: expected a JSON object, got list",
        f"{f}:4: $.evt: 'kernel.exec' does not end with '.ok' (status 'ok')",
        f"{f}:5: $.end_ns: the span ends before it starts",
        f"{f}:6: $.evt: event 'app.main' is not registered (no event family owns it)",
        f'{f}:7: $.attributes["net.peer.port"]: expected integer, got string (family driver)',
        f"{f}:8: $: missing required property 'severity'",
        f"{f}:8: $: missing required property 'body'",
        f"{f}:8: $: unexpected property 'status'",
        f"{f}:8: $: unexpected property 'start_ns'",
        f"{f}:8: $: unexpected property 'end_ns'",
        f"{f}:8: $: unexpected property 'duration_ms'",
        f"{f}:9: not JSON (Unterminated string starting at: line 1 column 8 (char 7))",
        f"{f}:10: not UTF-8 (invalid start byte at byte 0)",
    ]
    assert (report.lines, report.valid_lines, report.error_count, report.ok) == (10, 1, 14, False)
    assert report.unregistered == {"app.main": 1}
    assert report.kinds == {"span": 5, "log": 1}
    capped = validate_file(f, max_errors=2)
    assert (len(capped.errors), capped.error_count) == (2, 14)
    lenient = validate_file(f, allow_unregistered=True)
    assert lenient.error_count == 13 and lenient.unregistered == {"app.main": 1}


def test_validate_file_with_a_plugin_family(tmp_path: Path) -> None:
    line = {"ts": "2025-10-16T14:01:05.345Z", "tenant": "", "workspace": "", "dialect": "", "region": "",
            "kind": "log", "evt": "acme.thing", "component": "acme", "severity": 9, "body": "",
            "attributes": {"n": "x"}}
    f = tmp_path / "p.jsonl"
    f.write_text(json.dumps(line) + "\n", encoding="utf-8")
    assert validate_file(f).format_errors() == [
        f"{f}:1: $.evt: event 'acme.thing' is not registered (no event family owns it)"]
    reg = default_registry()
    reg.register(fam(schema={"type": "object", "properties": {"n": {"type": "integer"}}}))
    assert validate_file(f, reg).format_errors() == [f"{f}:1: $.attributes.n: expected integer, got string (family acme)"]


def test_registry_from_iterable() -> None:
    reg = Registry([fam()])
    assert [f.family for f in reg.families()] == ["acme"]


def test_lookup_cache_is_invalidated_by_register() -> None:
    reg = default_registry()
    assert reg.lookup("acme.thing.ok") is None  # cached miss
    reg.register(fam())
    assert reg.lookup("acme.thing.ok") == fam()
    for i in range(5000):  # the cache stays bounded
        reg.lookup(f"x{i}.y")
    assert len(reg._cache) <= 4096
    assert reg.lookup("driver.query").family == "driver"  # type: ignore[union-attr]
