"""ats.privacy.scrub through the native module."""

from __future__ import annotations

import pytest

import ats
from ats import privacy


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mail bob@example.com now", "mail [EMAIL] now"),
        ("ssn 123-45-6789.", "ssn [SSN]."),
        ("see /home/alice/src/app.py", "see ~/src/app.py"),
        ("see /Users/bob/x", "see ~/x"),
    ],
)
def test_markers(text: str, expected: str) -> None:
    assert privacy.scrub(text) == expected


@pytest.mark.parametrize(
    "secret",
    [
        "4111 1111 1111 1111",
        "AKIAIOSFODNN7EXAMPLE",
        "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8",
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    ],
)
def test_secrets_never_survive(secret: str) -> None:
    out = privacy.scrub(f"value={secret} end")
    assert secret not in out


def test_dsn_password_removed_user_and_host_kept() -> None:
    out = privacy.scrub("postgresql://app:s3cr3tpw@db.internal:5432/prod")
    assert "s3cr3tpw" not in out
    assert out.startswith("postgresql://app:") and out.endswith("@db.internal:5432/prod")


@pytest.mark.parametrize(
    "ordinary",
    ["version 1.2.3", "2025-10-16T14:01:05Z", "order 123456 shipped", "SELECT * FROM users WHERE id = ?", ""],
)
def test_ordinary_text_is_returned_as_the_same_object(ordinary: str) -> None:
    assert privacy.scrub(ordinary) is ordinary


def test_extra_patterns_and_bad_pattern() -> None:
    s = privacy.Scrubber([("ticket", r"TICKET-\d+", "[TICKET]")])
    assert s.scrub("fix TICKET-1234 now") == "fix [TICKET] now"
    with pytest.raises(ValueError) as info:
        privacy.Scrubber([("broken", "(unclosed", "[X]")])
    assert "broken" in str(info.value)


def test_defined_results_for_bad_input() -> None:
    surrogates = b"mail \xff bob@example.com".decode("utf-8", "surrogateescape")
    assert privacy.scrub(surrogates) == "mail \ufffd [EMAIL]"
    huge = ("word " * 2_000_000) + "bob@example.com"
    out = privacy.scrub(huge)
    assert out.endswith("[EMAIL]") and len(out) == len(huge) - len("bob@example.com") + len("[EMAIL]")
    assert ats._native.native_panics() == 0
