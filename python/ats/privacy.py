"""Scrubbing of PII and secrets from free text, computed natively.

Markers follow seed 004 §3.3: ``[EMAIL]``, ``[SSN]``, ``[API_KEY]`` and the
others documented in ``ats_core::scrub``. Home-directory segments of paths
become ``~``. Text with nothing to redact is returned unchanged (same object).
"""

from __future__ import annotations

from ats._native import Scrubber, scrub

__all__ = ["Scrubber", "scrub"]
