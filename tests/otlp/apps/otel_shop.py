"""An app instrumented with OpenTelemetry's own sqlite3 instrumentation; ATS's span processor
sends its spans through ATS (sanitised, fingerprinted) and ATS exports them over OTLP."""

import json
import os
import sqlite3

from opentelemetry.instrumentation.sqlite3 import SQLite3Instrumentor
from opentelemetry.sdk.trace import TracerProvider

from ats.otel import ATSSpanProcessor

provider = TracerProvider()
provider.add_span_processor(ATSSpanProcessor(start=True))
SQLite3Instrumentor().instrument(tracer_provider=provider)
tracer = provider.get_tracer("otel-shop")

with tracer.start_as_current_span("checkout") as root:
    conn = sqlite3.connect(os.path.join(os.environ["APP_DIR"], "otel-shop.db"))
    cur = conn.cursor()
    cur.execute("CREATE TABLE users (id INTEGER, email TEXT)")
    cur.execute("INSERT INTO users VALUES (42, 'carol.secret@example.org')")
    cur.execute("SELECT id FROM users WHERE email = 'carol.secret@example.org' OR id = 4111111111111111")
    conn.close()
ctx = root.get_span_context()
print(json.dumps({"trace_id": f"{ctx.trace_id:032x}", "span_id": f"{ctx.span_id:016x}"}))
