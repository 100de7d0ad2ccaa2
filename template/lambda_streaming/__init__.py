"""A streaming runtime for Python Lambda functions: the writer, the Runtime API loop, local mode.

Standard library only. The generated project owns its handler; this package is the template's and
``copier update`` brings its fixes. Names are imported on first use, so that Lambda's cold start
loads only what the loop needs.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = [
    "Context",
    "HandlerFunction",
    "ResponseStreamWriter",
    "RestProxyEvent",
    "StreamStateError",
    "StreamingHandler",
    "__version__",
]

_HOMES = {
    "Context": "context",
    "HandlerFunction": "handlers",
    "ResponseStreamWriter": "writer",
    "RestProxyEvent": "events",
    "StreamStateError": "writer",
    "StreamingHandler": "handlers",
}

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing at cold start
if TYPE_CHECKING:
    from .context import Context
    from .events import RestProxyEvent
    from .handlers import HandlerFunction, StreamingHandler
    from .writer import ResponseStreamWriter, StreamStateError


def __getattr__(name: str) -> object:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'lambda_streaming' has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f".{home}", __name__), name)
