"""`RestProxyEvent`: a typed view of the REST proxy event, refusing fields of the wrong shape."""

import json
import re

import pytest

from lambda_streaming import RestProxyEvent


def event(**fields: object) -> RestProxyEvent:
    parsed = RestProxyEvent.parse(json.dumps({"httpMethod": "GET", **fields}))
    assert parsed is not None
    return parsed


def test_well_formed_fields_read_as_they_are_and_nulls_as_empty():
    request = event(
        headers={"Accept": "text/plain"},
        multiValueHeaders={"Accept": ["text/plain"]},
        queryStringParameters=None,
        body="aGk=",
        isBase64Encoded=True,
    )
    assert request.header("accept") == "text/plain"
    assert request.multi_value_headers == {"Accept": ["text/plain"]}
    assert request.query_string_parameters == {}
    assert request.body_bytes() == b"hi"


@pytest.mark.parametrize(
    ("fields", "read", "named"),
    [
        ({"queryStringParameters": "x"}, "query_string_parameters", "queryStringParameters"),
        ({"headers": {"A": 1}}, "headers", "headers['A']"),
        ({"headers": ["A"]}, "headers", "headers"),
        ({"multiValueHeaders": {"A": "a"}}, "multi_value_headers", "multiValueHeaders['A']"),
        ({"pathParameters": 3}, "path_parameters", "pathParameters"),
        ({"stageVariables": {"v": None}}, "stage_variables", "stageVariables['v']"),
        ({"requestContext": "ctx"}, "request_context", "requestContext"),
        ({"path": 7}, "path", "path"),
        ({"body": {"a": 1}}, "body", "body"),
        ({"isBase64Encoded": "yes"}, "is_base64_encoded", "isBase64Encoded"),
    ],
)
def test_a_field_of_the_wrong_shape_raises_value_error_naming_it(fields, read, named):
    request = event(**fields)
    with pytest.raises(ValueError, match="^" + re.escape(named)):
        getattr(request, read)


def test_a_body_marked_base64_that_is_not_base64_raises_value_error():
    request = event(body="!!", isBase64Encoded=True)
    with pytest.raises(ValueError, match="body is marked isBase64Encoded but is not valid base64"):
        request.body_bytes()
