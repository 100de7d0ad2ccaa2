"""The invocation loop: fetch an event, run the handler, stream its response, report its errors.

Errors (ARCHITECTURE.md section 3): before the first byte they go to ``/error``; after it, to the
error trailers; a handler that cannot be imported goes to ``/init/error`` and the process exits.
"""

from __future__ import annotations

import os
import sys

from .context import Context, FunctionEnvironment, install_logging, set_request_id
from .protocol import error_payload, error_trailers, function_error_type
from .runtime_api import Invocation, RuntimeApiClient, RuntimeApiError, RuntimeApiGone
from .writer import ResponseStreamWriter

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing at cold start
if TYPE_CHECKING:
    from typing import Any

    from .handlers import HandlerFunction, StreamingHandler
    from .runtime_api import StreamingResponse

    Handler = HandlerFunction | StreamingHandler


def _log(level: str, message: str) -> None:
    """The runtime's own lines, in Lambda's format, without importing logging at cold start."""
    sys.stderr.write(f"[{level}]\t{message}\n")
    sys.stderr.flush()


class HandlerInitError(Exception):
    """The handler named by ``_HANDLER`` cannot be loaded; ``error_type`` names it for Lambda."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type


def load_handler(spec: str) -> HandlerFunction:
    """Resolve ``module.attribute`` (Lambda's ``_HANDLER``) to a callable handler."""
    module_name, _, attribute = spec.rpartition(".")
    if not module_name or not attribute:
        raise HandlerInitError(
            "Runtime.MalformedHandlerName", f"handler {spec!r} is not of the form module.attribute"
        )
    try:
        __import__(module_name)  # as importlib.import_module does, without importing importlib
        module = sys.modules[module_name]
    except Exception as error:  # an import error, a syntax error, or whatever the module raised
        raise HandlerInitError(
            "Runtime.ImportModuleError", f"Unable to import module {module_name!r}: {error}"
        ) from error
    try:
        target = getattr(module, attribute)
    except AttributeError:
        raise HandlerInitError(
            "Runtime.HandlerNotFound", f"module {module_name!r} has no attribute {attribute!r}"
        ) from None
    return as_handler_function(target, spec)


def as_handler_function(target: Any, name: str = "handler") -> HandlerFunction:
    """Accept a function, an object with ``handle``, or a class whose instances have one."""
    if isinstance(target, type) and callable(getattr(target, "handle", None)):
        target = target()
    handle = getattr(target, "handle", None)
    if callable(handle):
        return handle  # type: ignore[no-any-return]
    if callable(target):
        return target  # type: ignore[no-any-return]
    raise HandlerInitError(
        "Runtime.HandlerNotFound", f"{name} is neither callable nor an object with handle()"
    )


def serve(handler: str | Handler, runtime_api: str) -> None:
    """Serve invocations for ever; return when the Runtime API goes away.

    A handler named by a string that cannot be loaded is reported to ``/init/error`` and raises
    ``HandlerInitError``: the caller exits.
    """
    try:
        client = RuntimeApiClient(runtime_api)
        handle = _load(handler, client)
    except RuntimeApiGone:
        return
    run = _Runner(handle)
    while True:
        try:
            invocation = client.next_invocation()
        except RuntimeApiGone:
            client.close()
            return
        run(client, invocation)


def _load(handler: str | Handler, client: RuntimeApiClient) -> HandlerFunction:
    try:
        return load_handler(handler) if isinstance(handler, str) else as_handler_function(handler)
    except HandlerInitError as error:
        _log("ERROR", f"{error.error_type}: {error}")
        client.post_init_error(error.error_type, error_payload(error.error_type, str(error)))
        raise


class _Runner:
    """Runs one invocation at a time; keeps one event loop for ``async`` handlers."""

    def __init__(self, handle: HandlerFunction) -> None:
        self._handle = handle
        self._event_loop: Any = None
        self._function = FunctionEnvironment.read()
        self._logging_installed = False

    def __call__(self, client: RuntimeApiClient, invocation: Invocation) -> None:
        request_id = invocation.request_id
        set_request_id(request_id)
        if not self._logging_installed and "logging" in sys.modules:
            install_logging()  # the handler uses logging: its records carry the request id
            self._logging_installed = True
        trace_id = invocation.headers.get("lambda-runtime-trace-id")
        if trace_id:
            os.environ["_X_AMZN_TRACE_ID"] = trace_id
        else:
            os.environ.pop("_X_AMZN_TRACE_ID", None)
        stream = client.stream_response(request_id)
        writer = ResponseStreamWriter(stream)
        context = Context.from_invocation(request_id, invocation.headers, self._function)
        try:
            result = self._handle(invocation.event, writer, context)
            if hasattr(result, "__await__"):  # an async handler's coroutine
                result = self._run_coroutine(result)
            if result is not None:
                _warn_ignored_result(request_id, result)
            if not writer.finished:
                writer.finish()
        except Exception as error:
            self._report(client, request_id, writer, stream, error)
        finally:
            set_request_id("")

    def _run_coroutine(self, awaitable: Any) -> Any:
        if self._event_loop is None:
            import asyncio  # only async handlers pay for it

            self._event_loop = asyncio.new_event_loop()
        return self._event_loop.run_until_complete(awaitable)

    def _report(
        self,
        client: RuntimeApiClient,
        request_id: str,
        writer: ResponseStreamWriter,
        stream: StreamingResponse,
        error: Exception,
    ) -> None:
        import traceback  # only failures pay for it

        name = type(error).__name__
        stack = traceback.format_exception(error)
        payload = error_payload(name, str(error), traceback.format_tb(error.__traceback__))
        sys.stderr.write(f"[ERROR]\t{request_id}\t{''.join(stack)}")
        sys.stderr.flush()
        if writer.finished:
            return  # the response is complete: nothing can carry the error any more
        try:
            if stream.started:
                stream.finish(trailers=error_trailers(function_error_type(name), payload))
            else:
                client.post_error(request_id, function_error_type(name), payload)
        except (OSError, RuntimeApiError) as report_error:
            stream.abandon()
            _log("WARNING", f"could not report the error to the Runtime API: {report_error}")


def _warn_ignored_result(request_id: str, result: Any) -> None:
    """A streaming handler answers through ``writer``: say so when it returned something."""
    kind = type(result).__name__
    if kind in ("generator", "async_generator"):
        article = "an async" if kind == "async_generator" else "a"
        what = f"the handler is {article} generator function: its body never ran"
    else:
        what = f"the handler returned a {kind}: the return value is ignored"
    _log(
        "WARNING",
        f"{request_id}\t{what}; a streaming handler writes its response to writer "
        "(writer.write_status_and_headers, writer.write), it does not return it",
    )


def handler_from_environment(default: str | None = None) -> str:
    """``_HANDLER`` (or ``default``), importable from the task root as Lambda imports it."""
    task_root = os.environ.get("LAMBDA_TASK_ROOT") or os.getcwd()
    if task_root not in sys.path:
        sys.path.insert(0, task_root)
    handler = os.environ.get("_HANDLER") or default
    if not handler:
        sys.exit(
            "no handler: set _HANDLER=module.attribute, for example my_package.handler.handler"
        )
    return handler


def add_site_packages() -> None:
    """Put the interpreter's site-packages at the end of ``sys.path``, as ``site`` would.

    The exec wrapper starts Python with ``-S``: the ``site`` module, its ``.pth`` files and the
    user site cost milliseconds of every cold start, and a function needs none of them. What a
    function does need from there (the managed runtime's boto3) stays importable: this adds the
    directories ``site`` would add (a virtual environment's, if Python runs in one), without
    running their ``.pth`` files.
    """
    if not sys.flags.no_site:
        return
    for prefix in _site_prefixes():
        for lib in dict.fromkeys((sys.platlibdir, "lib")):
            path = f"{prefix}/{lib}/{_python_folder()}/site-packages"
            if path not in sys.path and os.path.isdir(path):
                sys.path.append(path)


def add_layer_directories(layers_root: str = "/opt") -> None:
    """Put the Python folders of the function's layers right after the task root, as the managed
    runtime's bootstrap does: Lambda unpacks layers into /opt, and a Python layer keeps its
    packages in ``python/lib/python3.X/site-packages`` or ``python/``."""
    task_root = os.environ.get("LAMBDA_TASK_ROOT") or os.getcwd()
    position = sys.path.index(task_root) + 1 if task_root in sys.path else 0
    for path in (f"{layers_root}/python/lib/{_python_folder()}/site-packages",
                 f"{layers_root}/python"):  # fmt: skip
        if path not in sys.path and os.path.isdir(path):
            sys.path.insert(position, path)
            position += 1


def _python_folder() -> str:
    """``python3.X`` as site-packages paths spell it (``python3.13t`` when free-threaded)."""
    free_threaded = "t" if "t" in getattr(sys, "abiflags", "") else ""
    return f"python{sys.version_info[0]}.{sys.version_info[1]}{free_threaded}"


def _site_prefixes() -> list[str]:
    """``sys.prefix``, or the virtual environment's folder (found as ``site.venv`` finds it)."""
    executable_folder = os.path.dirname(sys.executable)
    for folder in (executable_folder, os.path.dirname(executable_folder)):
        config = os.path.join(folder, "pyvenv.cfg")
        if os.path.isfile(config):
            with open(config, encoding="utf-8") as lines:
                settings = {
                    key.strip().lower(): value.strip().lower()
                    for key, _, value in (line.partition("=") for line in lines)
                }
            shared = settings.get("include-system-site-packages") == "true"
            return [folder, *dict.fromkeys((sys.prefix, sys.exec_prefix))] if shared else [folder]
    return list(dict.fromkeys((sys.prefix, sys.exec_prefix)))


def run_in_lambda(default_handler: str | None = None) -> None:
    """Lambda mode: serve until the Runtime API goes away; exit non-zero after an init error."""
    add_site_packages()
    handler = handler_from_environment(default_handler)
    add_layer_directories()
    try:
        serve(handler, os.environ["AWS_LAMBDA_RUNTIME_API"])
    except HandlerInitError:
        sys.exit(1)
