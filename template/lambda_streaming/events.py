"""A typed view of the event API Gateway REST APIs send: the proxy event, payload format 1.0."""

from __future__ import annotations

import json

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing at cold start
if TYPE_CHECKING:
    from typing import Any


class RestProxyEvent:
    """Read-only properties over the parsed event; ``raw`` keeps every field.

    API Gateway sends ``null``, not ``{}``, for the maps it has nothing for: the properties give
    empty maps instead, so handlers need no ``None`` checks. A field of the wrong shape (a string
    where a map of strings belongs) raises ``ValueError`` naming it. (A plain class, not a
    dataclass: the handler imports it at cold start.)
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
        method = self.raw.get("httpMethod")
        if not isinstance(method, str):
            raise ValueError(f"httpMethod must be a string, not {_shape(method)}")
        return method

    @property
    def path(self) -> str:
        return self._string("path") or ""

    @property
    def resource(self) -> str:
        return self._string("resource") or ""

    @property
    def headers(self) -> dict[str, str]:
        return self._map_of_strings("headers")

    @property
    def multi_value_headers(self) -> dict[str, list[str]]:
        return self._map_of_lists("multiValueHeaders")

    @property
    def query_string_parameters(self) -> dict[str, str]:
        return self._map_of_strings("queryStringParameters")

    @property
    def multi_value_query_string_parameters(self) -> dict[str, list[str]]:
        return self._map_of_lists("multiValueQueryStringParameters")

    @property
    def path_parameters(self) -> dict[str, str]:
        return self._map_of_strings("pathParameters")

    @property
    def stage_variables(self) -> dict[str, str]:
        return self._map_of_strings("stageVariables")

    @property
    def request_context(self) -> dict[str, Any]:
        context = self.raw.get("requestContext")
        if context is not None and not isinstance(context, dict):
            raise ValueError(f"requestContext must be an object or null, not {_shape(context)}")
        return context or {}

    @property
    def body(self) -> str | None:
        return self._string("body")

    @property
    def is_base64_encoded(self) -> bool:
        flag = self.raw.get("isBase64Encoded")
        if flag is not None and not isinstance(flag, bool):
            raise ValueError(f"isBase64Encoded must be true, false or null, not {_shape(flag)}")
        return bool(flag)

    def _string(self, field: str) -> str | None:
        value = self.raw.get(field)
        if value is not None and not isinstance(value, str):
            raise ValueError(f"{field} must be a string or null, not {_shape(value)}")
        return value

    def _map_of_strings(self, field: str) -> dict[str, str]:
        value = self.raw.get(field)
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise ValueError(f"{field} must be an object of strings or null, not {_shape(value)}")
        for key, item in value.items():
            if not isinstance(item, str):
                raise ValueError(f"{field}[{key!r}] must be a string, not {_shape(item)}")
        return value

    def _map_of_lists(self, field: str) -> dict[str, list[str]]:
        value = self.raw.get(field)
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise ValueError(
                f"{field} must be an object of string lists or null, not {_shape(value)}"
            )
        for key, items in value.items():
            if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
                raise ValueError(f"{field}[{key!r}] must be a list of strings, not {_shape(items)}")
        return value

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
            import binascii

            try:
                return base64.b64decode(body, validate=True)
            except binascii.Error as error:
                raise ValueError(
                    f"body is marked isBase64Encoded but is not valid base64: {error}"
                ) from None
        return body.encode()


def _shape(value: object) -> str:
    """A wrong value, briefly: its type and the start of its text."""
    text = repr(value)
    return f"{type(value).__name__} {text[:40]}{'...' if len(text) > 40 else ''}"
