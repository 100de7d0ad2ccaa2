"""A typed view of the event API Gateway REST APIs send: the proxy event, payload format 1.0."""

from __future__ import annotations

import json

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing at cold start
if TYPE_CHECKING:
    from typing import Any


class RestProxyEvent:
    """Read-only properties over the parsed event; ``raw`` keeps every field.

    API Gateway sends ``null``, not ``{}``, for the maps it has nothing for: the properties give
    empty maps instead, so handlers need no ``None`` checks. (A plain class, not a dataclass: the
    handler imports it at cold start.)
    """

    __slots__ = ("raw",)

    def __init__(self, raw: dict[str, Any]) -> None:
        self.raw = raw

    @classmethod
    def parse(cls, event: bytes | str) -> RestProxyEvent | None:
        """The event as a REST proxy event, or None when it is something else (a direct invoke)."""
        try:
            data = json.loads(event)
        except ValueError:
            return None
        if not isinstance(data, dict) or not isinstance(data.get("httpMethod"), str):
            return None
        return cls(data)

    def __repr__(self) -> str:
        return f"RestProxyEvent({self.http_method} {self.path})"

    @property
    def http_method(self) -> str:
        return self.raw["httpMethod"]  # type: ignore[no-any-return]

    @property
    def path(self) -> str:
        return self.raw.get("path") or ""

    @property
    def resource(self) -> str:
        return self.raw.get("resource") or ""

    @property
    def headers(self) -> dict[str, str]:
        return self.raw.get("headers") or {}

    @property
    def multi_value_headers(self) -> dict[str, list[str]]:
        return self.raw.get("multiValueHeaders") or {}

    @property
    def query_string_parameters(self) -> dict[str, str]:
        return self.raw.get("queryStringParameters") or {}

    @property
    def multi_value_query_string_parameters(self) -> dict[str, list[str]]:
        return self.raw.get("multiValueQueryStringParameters") or {}

    @property
    def path_parameters(self) -> dict[str, str]:
        return self.raw.get("pathParameters") or {}

    @property
    def stage_variables(self) -> dict[str, str]:
        return self.raw.get("stageVariables") or {}

    @property
    def request_context(self) -> dict[str, Any]:
        return self.raw.get("requestContext") or {}

    @property
    def body(self) -> str | None:
        return self.raw.get("body")

    @property
    def is_base64_encoded(self) -> bool:
        return bool(self.raw.get("isBase64Encoded"))

    def header(self, name: str, default: str | None = None) -> str | None:
        """A request header by name, whatever its case (HTTP header names are case-insensitive)."""
        wanted = name.lower()
        for key, value in self.headers.items():
            if key.lower() == wanted:
                return value
        return default

    def body_bytes(self) -> bytes:
        """The request body as bytes, decoded from base64 when API Gateway encoded it."""
        body = self.body
        if body is None:
            return b""
        if self.is_base64_encoded:
            import base64  # only binary bodies need it

            return base64.b64decode(body)
        return body.encode()
