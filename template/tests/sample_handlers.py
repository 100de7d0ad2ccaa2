"""Handlers that the runtime tests start in a separate process through ``_HANDLER``."""

import logging

from lambda_streaming import Context, ResponseStreamWriter


def logs_and_streams(event: bytes, writer: ResponseStreamWriter, context: Context) -> None:
    logging.getLogger(__name__).info("hello from the handler")
    writer.write_and_finish("logged")


def exits_with_3(event: bytes, writer: ResponseStreamWriter, context: Context) -> None:
    raise SystemExit(3)
