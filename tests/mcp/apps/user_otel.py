"""The program's own OpenTelemetry SDK setup (``APP_OTEL=1``): a global ``TracerProvider`` exporting to
memory, with ATS's span processor added as the ATS docs suggest. :func:`exported` lists what the
program's exporter received, for the test to compare with the ATS store."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from ats.otel import ATSSpanProcessor

_exporter = InMemorySpanExporter()
_provider = TracerProvider()
_provider.add_span_processor(SimpleSpanProcessor(_exporter))
_provider.add_span_processor(ATSSpanProcessor())
trace.set_tracer_provider(_provider)


def exported() -> list[list[str]]:
    """[name, span id (16 hex), kind] of every span the program's exporter got."""
    return [[s.name, f"{s.context.span_id:016x}", s.kind.name] for s in _exporter.get_finished_spans()]
