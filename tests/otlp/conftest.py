"""Fixtures of the OTLP tests; the harness (rotel, the decoding sink, nginx TLS) is in otlp_harness.py."""

from otlp_harness import collector, otlp_sink, tls, tls_proxy

__all__ = ["collector", "otlp_sink", "tls", "tls_proxy"]
