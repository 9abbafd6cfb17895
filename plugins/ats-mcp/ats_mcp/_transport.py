"""Which client transport a request goes over, and its session id.

The transport context managers are wrapped (``stdio_client`` -> ``pipe``, ``streamable_http_client``
-> ``tcp``); their bodies run with :data:`TRANSPORT` set. The session id of streamable HTTP comes from
the getter ``mcp`` 1.x yields as the third stream, or (``mcp`` 2.x yields two streams) from the
``StreamableHTTPTransport`` created while entering the context manager.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
from collections.abc import AsyncIterator, Callable
from typing import Any

from ats.instrumentation import count_error

__all__ = ["TRANSPORT", "make_http_transport_init", "session_id", "wrap_transport"]

#: (network.transport, session id getter or None) of the transport the caller is inside.
TRANSPORT: contextvars.ContextVar[tuple[str, Callable[[], str | None] | None] | None] = contextvars.ContextVar(
    "ats_mcp_transport", default=None)
#: Streamable HTTP transport objects created inside the context manager being entered.
_CREATED: contextvars.ContextVar[list[Any] | None] = contextvars.ContextVar("ats_mcp_http_transports", default=None)


def wrap_transport(original: Callable[..., Any], transport: str) -> Callable[..., Any]:
    """An async context manager like ``original`` that marks its body as running over ``transport``."""

    @contextlib.asynccontextmanager
    async def transport_cm(*args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        created: list[Any] = []
        collecting: contextvars.Token[list[Any] | None] | None = _CREATED.set(created)
        try:
            async with original(*args, **kwargs) as streams:
                if collecting is not None:
                    _stop_collecting(collecting)
                    collecting = None
                getter = _getter(streams, created, transport)
                token = TRANSPORT.set((transport, getter))
                try:
                    yield streams
                finally:
                    with contextlib.suppress(ValueError):  # exited from another context
                        TRANSPORT.reset(token)
        finally:
            if collecting is not None:
                _stop_collecting(collecting)

    wrapped = functools.wraps(original)(transport_cm)
    wrapped._ats_instrumented = True  # type: ignore[attr-defined]
    return wrapped


def _stop_collecting(token: contextvars.Token[list[Any] | None]) -> None:
    with contextlib.suppress(ValueError):
        _CREATED.reset(token)


def _getter(streams: Any, created: list[Any], transport: str) -> Callable[[], str | None] | None:
    try:
        if isinstance(streams, tuple) and len(streams) > 2 and callable(streams[2]):
            getter: Callable[[], str | None] = streams[2]
            return getter
    except Exception as exc:
        count_error("mcp.transport", exc)
    if transport != "tcp":
        return None
    return lambda: getattr(created[0], "session_id", None) if created else None


def make_http_transport_init(original: Callable[..., Any]) -> Callable[..., Any]:
    """``StreamableHTTPTransport.__init__`` that tells the wrapped context manager about the object."""

    @functools.wraps(original)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        created = _CREATED.get()
        if created is not None:
            created.append(self)

    return __init__


def session_id() -> str | None:
    """The session id of the transport the caller is inside, if it has one yet."""
    transport = TRANSPORT.get()
    if transport is None or transport[1] is None:
        return None
    sid = transport[1]()
    return sid if isinstance(sid, str) and sid else None
