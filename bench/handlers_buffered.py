"""The benchmark's handler for the official runtime interface client, which cannot stream: it
returns the whole body, which the client then serializes and posts in one buffered response."""


def handle(event, context):
    size = event.get("size", 0) if isinstance(event, dict) else 0
    return "x" * size if size else "ok"
