"""The benchmark's streaming handler, copied into the rendered project as ``bench_handlers``.

The event says what to stream: ``{"size": bytes, "write": bytes per write, "stamp": true}``, either
directly or as the query string of an API Gateway request. ``stamp`` makes the first body write the
wall-clock time in nanoseconds, so a client can tell how long that write took to reach it.
"""

import time

_BLOCKS: dict[int, bytes] = {}


def _spec(event: bytes) -> dict:
    if event in (b"", b"{}"):
        return {}  # the small invocation: no JSON to parse (the buffered handler parses none)
    import json

    try:
        data = json.loads(event)
    except ValueError:
        return {}
    if isinstance(data, dict) and "httpMethod" in data:
        return {name: int(value) for name, value in (data["queryStringParameters"] or {}).items()}
    return data if isinstance(data, dict) else {}


def handle(event, writer, context):
    spec = _spec(event)
    size = spec.get("size", 0)
    if not size:
        writer.write_and_finish(b"ok")
        return
    write = spec.get("write", 65536)
    writer.write_status_and_headers(200, {"Content-Type": "application/octet-stream"})
    if spec.get("stamp"):
        writer.write(b"%020d" % time.time_ns())
    block = _BLOCKS.get(write) or _BLOCKS.setdefault(write, b"x" * write)
    full, rest = divmod(size, write)
    for _ in range(full):
        writer.write(block)
    if rest:
        writer.write(block[:rest])
    writer.finish()
