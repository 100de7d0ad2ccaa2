"""A typed view of the event API Gateway REST APIs send: the proxy event, payload format 1.0."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class RestProxyEvent:
    """The fields of a REST proxy event a handler usually needs; ``raw`` keeps all of them."""

    http_method: str
    path: str
    resource: str
    headers: Mapping[str, str] = field(default_factory=dict)
    multi_value_headers: Mapping[str, list[str]] = field(default_factory=dict)
    query_string_parameters: Mapping[str, str] = field(default_factory=dict)
    multi_value_query_string_parameters: Mapping[str, list[str]] = field(default_factory=dict)
    path_parameters: Mapping[str, str] = field(default_factory=dict)
    stage_variables: Mapping[str, str] = field(default_factory=dict)
    request_context: Mapping[str, Any] = field(default_factory=dict)
    body: str | None = None
    is_base64_encoded: bool = False
    raw: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, event: bytes | str) -> RestProxyEvent | None:
        """The event as a REST proxy event, or None when it is something else (a direct invoke)."""
        try:
            data = json.loads(event)
        except ValueError:
            return None
        if not isinstance(data, dict) or not isinstance(data.get("httpMethod"), str):
            return None
        return cls(
            http_method=data["httpMethod"],
            path=data.get("path") or "",
            resource=data.get("resource") or "",
            # API Gateway sends null, not {}, for the maps it has nothing for.
            headers=data.get("headers") or {},
            multi_value_headers=data.get("multiValueHeaders") or {},
            query_string_parameters=data.get("queryStringParameters") or {},
            multi_value_query_string_parameters=data.get("multiValueQueryStringParameters") or {},
            path_parameters=data.get("pathParameters") or {},
            stage_variables=data.get("stageVariables") or {},
            request_context=data.get("requestContext") or {},
            body=data.get("body"),
            is_base64_encoded=bool(data.get("isBase64Encoded")),
            raw=data,
        )

    def header(self, name: str, default: str | None = None) -> str | None:
        """A request header by name, whatever its case (HTTP header names are case-insensitive)."""
        wanted = name.lower()
        for key, value in self.headers.items():
            if key.lower() == wanted:
                return value
        return default

    def body_bytes(self) -> bytes:
        """The request body as bytes, decoded from base64 when API Gateway encoded it."""
        if self.body is None:
            return b""
        return base64.b64decode(self.body) if self.is_base64_encoded else self.body.encode()
