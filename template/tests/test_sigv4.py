"""SigV4 as API Gateway checks it: known vectors, then each reason a request is refused."""

from datetime import UTC, datetime, timedelta

import pytest

from lambda_streaming.sigv4 import (
    Credentials,
    SignedRequest,
    canonical_query_string,
    canonical_uri,
    sign_request,
    signing_key,
    verify_request,
)

# The example keys of AWS's documentation and SigV4 test suite.
KEYS = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
SUITE_TIME = datetime(2015, 8, 30, 12, 36, tzinfo=UTC)
NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
REGION = "eu-west-1"


def signature_of(request: SignedRequest) -> str:
    authorization = request.header("Authorization") or ""
    return authorization.rpartition("Signature=")[2]


def suite_request(query: str = "") -> SignedRequest:
    return SignedRequest("GET", "/", query, (("Host", "example.amazonaws.com"),))


def api_request(body: bytes = b"", query: str = "") -> SignedRequest:
    headers = (("Host", "127.0.0.1:7000"), ("User-Agent", "test"))
    return SignedRequest("POST", "/prod/stream", query, headers, body)


def signed(request: SignedRequest, keys: Credentials = KEYS, now: datetime = NOW) -> SignedRequest:
    return sign_request(request, keys, region=REGION, now=now)


def verify(request: SignedRequest, keys: Credentials = KEYS, now: datetime = NOW):
    return verify_request(request, {keys.access_key_id: keys}, region=REGION, now=now)


# Known vectors


def test_signing_key_matches_the_documented_example():
    key = signing_key(KEYS.secret_access_key, "20120215", "us-east-1", "iam")
    assert key.hex() == "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d"


def test_get_vanilla_matches_the_aws_test_suite():
    request = sign_request(
        suite_request(), KEYS, region="us-east-1", now=SUITE_TIME, service="service"
    )
    assert signature_of(request) == (
        "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
    )
    assert "SignedHeaders=host;x-amz-date" in (request.header("Authorization") or "")


def test_query_parameters_are_sorted_as_in_the_aws_test_suite():
    request = sign_request(
        suite_request("Param2=value2&Param1=value1"),
        KEYS,
        region="us-east-1",
        now=SUITE_TIME,
        service="service",
    )
    assert signature_of(request) == (
        "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"
    )


def test_iam_list_users_matches_the_documented_example():
    request = SignedRequest(
        "GET",
        "/",
        "Action=ListUsers&Version=2010-05-08",
        (
            ("Host", "iam.amazonaws.com"),
            ("Content-Type", "application/x-www-form-urlencoded; charset=utf-8"),
        ),
    )
    request = sign_request(request, KEYS, region="us-east-1", now=SUITE_TIME, service="iam")
    assert signature_of(request) == (
        "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
    )


def test_canonical_uri_normalises_and_encodes_the_wire_path_again():
    assert canonical_uri("/") == "/"
    assert canonical_uri("/prod/./a/../stream") == "/prod/stream"
    assert canonical_uri("/prod/a%20b") == "/prod/a%2520b"


def test_canonical_query_encodes_strictly_and_sorts_by_name_then_value():
    assert canonical_query_string("b=2&a=%7e&a=1&c") == "a=1&a=~&b=2&c="
    assert canonical_query_string("q=a+b") == "q=a%2Bb"


def test_botocore_signature_verifies():
    pytest.importorskip("botocore")
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials as BotoCredentials

    boto_request = AWSRequest("POST", "http://127.0.0.1:7000/prod/stream?b=2&a=1", data=b'{"x": 1}')
    SigV4Auth(BotoCredentials("AKID", "secret", "token"), "execute-api", REGION).add_auth(
        boto_request
    )
    headers = tuple((name, value) for name, value in boto_request.headers.items())
    headers += (("Host", "127.0.0.1:7000"),)
    request = SignedRequest("POST", "/prod/stream", "b=2&a=1", headers, b'{"x": 1}')
    keys = Credentials("AKID", "secret", "token")
    verdict = verify(request, keys, now=datetime.now(UTC))
    assert verdict.allowed, verdict.message


# Verification


def test_a_correctly_signed_request_is_allowed_and_names_its_key():
    verdict = verify(signed(api_request(b"body", "a=1")))
    assert verdict.allowed
    assert verdict.access_key_id == "AKIDEXAMPLE"


def test_an_unsigned_request_is_missing_authentication_token():
    verdict = verify(api_request())
    assert (verdict.allowed, verdict.status) == (False, 403)
    assert verdict.message == "Missing Authentication Token"


def test_a_wrong_secret_fails_and_the_message_shows_the_canonical_request():
    verdict = verify(signed(api_request(), Credentials("AKIDEXAMPLE", "not the secret")))
    assert verdict.error_type == "InvalidSignatureException"
    assert "does not match" in verdict.message
    assert "POST\n/prod/stream\n" in verdict.message


@pytest.mark.parametrize("change", ["body", "query", "method"])
def test_a_request_changed_after_signing_fails(change):
    request = signed(api_request(b"body", "a=1"))
    changed = SignedRequest(
        "PUT" if change == "method" else request.method,
        request.path,
        "a=2" if change == "query" else request.query,
        request.headers,
        b"other" if change == "body" else request.body,
    )
    assert verify(changed).error_type == "InvalidSignatureException"


@pytest.mark.parametrize("skew", [timedelta(minutes=-6), timedelta(minutes=6)])
def test_a_date_more_than_five_minutes_off_is_refused(skew):
    verdict = verify(signed(api_request(), now=NOW + skew))
    assert verdict.error_type == "InvalidSignatureException"
    assert "Signature" in verdict.message and (
        "expired" in verdict.message or "yet" in verdict.message
    )


@pytest.mark.parametrize("skew", [timedelta(minutes=-4), timedelta(minutes=4)])
def test_a_date_within_five_minutes_is_accepted(skew):
    assert verify(signed(api_request(), now=NOW + skew)).allowed


def test_an_unknown_access_key_is_an_invalid_security_token():
    verdict = verify(signed(api_request(), Credentials("AKIDOTHER", KEYS.secret_access_key)))
    assert verdict.error_type == "UnrecognizedClientException"
    assert verdict.message == "The security token included in the request is invalid."


def test_temporary_credentials_need_the_matching_security_token():
    keys = Credentials("ASIAEXAMPLE", "secret", "the-token")
    assert verify(signed(api_request(), keys), keys).allowed
    without_token = signed(api_request(), Credentials("ASIAEXAMPLE", "secret"))
    assert verify(without_token, keys).error_type == "UnrecognizedClientException"
    wrong_token = signed(api_request(), Credentials("ASIAEXAMPLE", "secret", "other"))
    assert verify(wrong_token, keys).error_type == "UnrecognizedClientException"


def test_long_term_keys_refuse_a_security_token_they_did_not_issue():
    with_token = signed(api_request(), Credentials(KEYS.access_key_id, KEYS.secret_access_key, "x"))
    verdict = verify(with_token)
    assert verdict.error_type == "UnrecognizedClientException"
    assert verdict.message == "The security token included in the request is invalid."


def test_a_signature_for_another_region_or_service_is_refused():
    elsewhere = sign_request(api_request(), KEYS, region="us-west-2", now=NOW)
    assert "region" in verify(elsewhere).message
    other_service = sign_request(api_request(), KEYS, region=REGION, now=NOW, service="s3")
    assert "execute-api" in verify(other_service).message


def test_a_malformed_authorization_header_is_an_incomplete_signature():
    request = SignedRequest(
        "GET", "/", "", (("Host", "h"), ("Authorization", "AWS4-HMAC-SHA256 Credential=x"))
    )
    verdict = verify(request)
    assert verdict.error_type == "IncompleteSignatureException"
    assert "'Signature'" in verdict.message and "'SignedHeaders'" in verdict.message
