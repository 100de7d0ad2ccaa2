"""A streaming runtime for Python Lambda functions: the writer, the Runtime API loop, local mode.

Standard library only. The generated project owns its handler; this package is the template's and
``copier update`` brings its fixes.
"""

from .context import Context
from .events import RestProxyEvent
from .writer import ResponseStreamWriter, StreamStateError

__version__ = "0.1.0"

__all__ = ["Context", "ResponseStreamWriter", "RestProxyEvent", "StreamStateError", "__version__"]
