"""The handler contract (ARCHITECTURE.md section 3), for type checkers and readers.

The runtime does not import this module: a handler is anything of one of these shapes.
"""

from __future__ import annotations

from typing import Any, Protocol

from .context import Context
from .writer import ResponseStreamWriter


class HandlerFunction(Protocol):
    """``def handler(event: bytes, writer, context)``, plain or ``async``."""

    def __call__(self, event: bytes, writer: ResponseStreamWriter, context: Context) -> Any: ...


class StreamingHandler(Protocol):
    """An object whose ``handle`` has the handler's shape (the Swift runtime's protocol)."""

    def handle(self, event: bytes, writer: ResponseStreamWriter, context: Context) -> Any: ...
