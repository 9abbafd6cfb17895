"""What of an MCP payload may be recorded: a hash, a size and the argument names, never the values.

Seed 002 ("Forbidden") lists full MCP tool arguments among the content that must not be stored.
A payload is therefore reduced to the SHA-256 of its canonical JSON (sorted keys, no spaces, UTF-8),
the byte size of that JSON and, for arguments, the sorted names. Only when the user opts in
(``mcp.capture_content = true``) is the text kept too, and then scrubbed of PII and secrets.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any, Final

__all__ = ["ARGUMENTS", "RESULT", "canonical_json", "capture_enabled", "describe"]

#: Attribute prefixes of the two payloads a tool or prompt call carries.
ARGUMENTS: Final = "mcp.arguments"
RESULT: Final = "mcp.result"
#: The opt-in text attributes of the MCP semantic conventions (tools/call only).
_TEXT_KEYS: Final = {ARGUMENTS: "gen_ai.tool.call.arguments", RESULT: "gen_ai.tool.call.result"}
_MAX_TEXT: Final = 4096


def canonical_json(value: Any) -> bytes:
    """The canonical JSON bytes of a payload (the hash input and the measured size)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode()


def describe(prefix: str, value: Any, out: dict[str, Any], *, capture: bool, text_allowed: bool) -> int:
    """Adds ``{prefix}.hash`` / ``.size_bytes`` (and ``.names`` for a mapping) to ``out``.

    With ``capture`` and ``text_allowed`` the scrubbed text goes under the convention's opt-in key.
    :returns: the payload size in bytes.
    """
    data = canonical_json(value)
    out[f"{prefix}.hash"] = "sha256:" + hashlib.sha256(data).hexdigest()
    out[f"{prefix}.size_bytes"] = len(data)
    if prefix == ARGUMENTS and isinstance(value, Mapping):
        out[f"{prefix}.names"] = ",".join(sorted(str(k) for k in value))
    if capture and text_allowed:
        from ats.privacy import scrub

        out[_TEXT_KEYS[prefix]] = scrub(data.decode()[:_MAX_TEXT])
    return len(data)


def capture_enabled(rt: Any) -> bool:
    """``mcp.capture_content`` of the running configuration (False when unknown)."""
    section = getattr(getattr(rt, "config", None), "mcp", None)
    return bool(getattr(section, "capture_content", False))
