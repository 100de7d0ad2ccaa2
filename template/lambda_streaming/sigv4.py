"""AWS Signature Version 4, as API Gateway checks it for an IAM-protected API: pure functions.

No sockets and no clock of its own: `verify_request` takes the request's parts, the credentials
local mode knows and the current time, and says whether API Gateway would let the request in, and
if not, which 403 it would answer. The signing side (`sign_request`) exists for tests and tools.

The algorithm (AWS "Create a signed AWS API request"): a canonical request (method, URI, query,
signed headers, payload hash) is hashed into a string to sign, which is signed with a key derived
from the secret key, the date, the region and the service.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import quote, unquote

ALGORITHM = "AWS4-HMAC-SHA256"
SERVICE = "execute-api"
# API Gateway refuses a signature whose date is more than this far from its clock.
MAX_CLOCK_SKEW = timedelta(minutes=5)
EMPTY_PAYLOAD_HASH = hashlib.sha256(b"").hexdigest()

_AMZ_DATE = "%Y%m%dT%H%M%SZ"
_SPACES = re.compile(r"\s+")
_UNRESERVED = "-_.~"  # with letters and digits: RFC 3986 unreserved, never percent-encoded


@dataclass(frozen=True)
class Credentials:
    """The access key the caller must have signed with (and its session token, if temporary)."""

    access_key_id: str
    secret_access_key: str
    session_token: str | None = None


@dataclass(frozen=True)
class SignedRequest:
    """What a signature covers: the request as it arrived, before any decoding."""

    method: str
    path: str  # percent-encoded, as on the request line
    query: str  # raw query string, without "?"
    headers: tuple[tuple[str, str], ...]
    body: bytes = b""

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        values = [value for key, value in self.headers if key.lower() == wanted]
        return ",".join(values) if values else None


@dataclass(frozen=True)
class Verdict:
    """The outcome: `allowed`, or the status, error type and message API Gateway would answer."""

    allowed: bool
    status: int = 200
    error_type: str = ""
    message: str = ""
    access_key_id: str | None = None

    @classmethod
    def deny(cls, error_type: str, message: str) -> Verdict:
        return cls(False, 403, error_type, message)


# The canonical request


def uri_encode(text: str, *, keep_slash: bool = False) -> str:
    """Percent-encode everything but the RFC 3986 unreserved characters (and `/` if asked)."""
    return quote(text, safe=_UNRESERVED + ("/" if keep_slash else ""))


def canonical_uri(path: str) -> str:
    """The path, normalised (no `.`/`..` segments, no empty ones) and URI-encoded.

    Every service but S3 encodes the path twice: once by the client on the request line, once
    more here, so `%20` on the wire becomes `%2520` in the canonical request (botocore does the
    same). Segments are split on the wire form, so an encoded `%2F` stays inside its segment.
    """
    segments: list[str] = []
    for segment in path.split("/"):
        if segment in ("", "."):
            continue
        if segment == "..":
            if segments:
                segments.pop()
            continue
        segments.append(segment)
    normalized = "/" + "/".join(segments)
    if path.endswith("/") and segments:
        normalized += "/"
    return uri_encode(normalized, keep_slash=True)


def canonical_query_string(query: str) -> str:
    """Each name and value decoded then re-encoded strictly, sorted by name then by value."""
    pairs: list[tuple[str, str]] = []
    for item in query.split("&"):
        if not item:
            continue
        name, _, value = item.partition("=")
        # `+` is a literal plus in SigV4, not a space: unquote, never unquote_plus.
        pairs.append((uri_encode(unquote(name)), uri_encode(unquote(value))))
    return "&".join(f"{name}={value}" for name, value in sorted(pairs))


def canonical_headers(headers: Iterable[tuple[str, str]], signed_headers: Iterable[str]) -> str:
    """`name:value\\n` for each signed header: names lowercased, values trimmed, repeats joined."""
    values: dict[str, list[str]] = {}
    for name, value in headers:
        values.setdefault(name.lower(), []).append(_SPACES.sub(" ", value.strip()))
    return "".join(f"{name}:{','.join(values.get(name, []))}\n" for name in signed_headers)


def payload_hash(request: SignedRequest) -> str:
    return hashlib.sha256(request.body).hexdigest()


def canonical_request(request: SignedRequest, signed_headers: list[str]) -> str:
    return "\n".join(
        [
            request.method.upper(),
            canonical_uri(request.path),
            canonical_query_string(request.query),
            canonical_headers(request.headers, signed_headers),
            ";".join(signed_headers),
            payload_hash(request),
        ]
    )


def credential_scope(date: str, region: str, service: str) -> str:
    return f"{date}/{region}/{service}/aws4_request"


def string_to_sign(amz_date: str, scope: str, canonical: str) -> str:
    digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    return f"{ALGORITHM}\n{amz_date}\n{scope}\n{digest}"


def signing_key(secret_access_key: str, date: str, region: str, service: str) -> bytes:
    key = ("AWS4" + secret_access_key).encode("utf-8")
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode("utf-8"), hashlib.sha256).digest()
    return key


def signature(key: bytes, to_sign: str) -> str:
    return hmac.new(key, to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


# Signing (for tests and tools)


def sign_request(
    request: SignedRequest,
    credentials: Credentials,
    *,
    region: str,
    now: datetime,
    service: str = SERVICE,
) -> SignedRequest:
    """The request with `X-Amz-Date`, the security token if any, and `Authorization` added."""
    amz_date = now.astimezone(UTC).strftime(_AMZ_DATE)
    headers = [
        (name, value)
        for name, value in request.headers
        if name.lower() not in ("authorization", "x-amz-date", "x-amz-security-token")
    ]
    headers.append(("X-Amz-Date", amz_date))
    if credentials.session_token:
        headers.append(("X-Amz-Security-Token", credentials.session_token))
    unsigned = SignedRequest(
        request.method, request.path, request.query, tuple(headers), request.body
    )
    signed_names = sorted({name.lower() for name, _ in headers})
    scope = credential_scope(amz_date[:8], region, service)
    to_sign = string_to_sign(amz_date, scope, canonical_request(unsigned, signed_names))
    key = signing_key(credentials.secret_access_key, amz_date[:8], region, service)
    authorization = (
        f"{ALGORITHM} Credential={credentials.access_key_id}/{scope}, "
        f"SignedHeaders={';'.join(signed_names)}, Signature={signature(key, to_sign)}"
    )
    return SignedRequest(
        request.method,
        request.path,
        request.query,
        (*headers, ("Authorization", authorization)),
        request.body,
    )


# Verification


@dataclass(frozen=True)
class Authorization:
    """The parts of an `Authorization: AWS4-HMAC-SHA256 ...` header."""

    access_key_id: str
    date: str
    region: str
    service: str
    terminator: str
    signed_headers: list[str]
    signature: str


def parse_authorization(value: str) -> Authorization | str:
    """The header's parts, or the message API Gateway gives for a malformed header."""
    algorithm, _, rest = value.strip().partition(" ")
    if algorithm != ALGORITHM:
        return f"Authorization header requires the algorithm {ALGORITHM}, got {algorithm!r}."
    fields: dict[str, str] = {}
    for part in rest.split(","):
        name, equals, field_value = part.strip().partition("=")
        if equals:
            fields[name] = field_value.strip()
    missing = [name for name in ("Credential", "SignedHeaders", "Signature") if name not in fields]
    if missing:
        return " ".join(f"Authorization header requires '{name}' parameter." for name in missing)
    credential = fields["Credential"].split("/")
    if len(credential) != 5:
        return (
            "Credential must have exactly 5 slash-delimited elements, "
            f"e.g. keyid/date/region/service/term, got '{fields['Credential']}'"
        )
    return Authorization(
        *credential,
        signed_headers=fields["SignedHeaders"].split(";"),
        signature=fields["Signature"],
    )


def parse_amz_date(text: str) -> datetime | None:
    try:
        return datetime.strptime(text, _AMZ_DATE).replace(tzinfo=UTC)
    except ValueError:
        return None


def verify_request(
    request: SignedRequest,
    credentials: Mapping[str, Credentials],
    *,
    region: str,
    now: datetime,
    service: str = SERVICE,
    max_skew: timedelta = MAX_CLOCK_SKEW,
) -> Verdict:
    """Would API Gateway let this request through IAM auth? `credentials` maps key id to keys.

    Checks, in order: a signature is present, the header is well formed and scoped to this region
    and service, the access key and session token are known, the date is within `max_skew` of
    `now`, and the signature matches. The messages follow API Gateway's. IAM policies are not
    evaluated: a caller holding known keys is allowed.
    """
    value = request.header("Authorization")
    if not value:
        return Verdict.deny("MissingAuthenticationTokenException", "Missing Authentication Token")
    parsed = parse_authorization(value)
    if isinstance(parsed, str):
        return Verdict.deny("IncompleteSignatureException", parsed)
    if parsed.terminator != "aws4_request":
        return Verdict.deny(
            "IncompleteSignatureException",
            "Credential should be scoped with a valid terminator: 'aws4_request', "
            f"not '{parsed.terminator}'.",
        )
    if parsed.service != service:
        return Verdict.deny(
            "InvalidSignatureException",
            f"Credential should be scoped to correct service: '{service}'.",
        )
    if parsed.region != region:
        return Verdict.deny(
            "InvalidSignatureException",
            f"Credential should be scoped to a valid region, not '{parsed.region}'.",
        )
    if "host" not in parsed.signed_headers:
        return Verdict.deny(
            "IncompleteSignatureException", "The host header must be among the signed headers."
        )
    amz_date = request.header("X-Amz-Date")
    if amz_date is None:
        return Verdict.deny(
            "IncompleteSignatureException",
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.",
        )
    signed_at = parse_amz_date(amz_date)
    if signed_at is None:
        return Verdict.deny("IncompleteSignatureException", f"Invalid X-Amz-Date '{amz_date}'.")
    if amz_date[:8] != parsed.date:
        return Verdict.deny(
            "InvalidSignatureException",
            f"Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date "
            f"from HTTP: '{parsed.date}' != '{amz_date[:8]}', from '{amz_date}'.",
        )
    known = credentials.get(parsed.access_key_id)
    if known is None:
        return Verdict.deny(
            "UnrecognizedClientException", "The security token included in the request is invalid."
        )
    # Long-term keys carry no token, so a token with them is as wrong as a missing or other one.
    if not hmac.compare_digest(
        request.header("X-Amz-Security-Token") or "", known.session_token or ""
    ):
        return Verdict.deny(
            "UnrecognizedClientException", "The security token included in the request is invalid."
        )
    now = now.astimezone(UTC)
    if signed_at < now - max_skew:
        return Verdict.deny(
            "InvalidSignatureException",
            f"Signature expired: {amz_date} is now earlier than "
            f"{(now - max_skew).strftime(_AMZ_DATE)} ({now.strftime(_AMZ_DATE)} - 5 min.)",
        )
    if signed_at > now + max_skew:
        return Verdict.deny(
            "InvalidSignatureException",
            f"Signature not yet current: {amz_date} is still later than "
            f"{(now + max_skew).strftime(_AMZ_DATE)} ({now.strftime(_AMZ_DATE)} + 5 min.)",
        )
    canonical = canonical_request(request, parsed.signed_headers)
    scope = credential_scope(parsed.date, parsed.region, parsed.service)
    to_sign = string_to_sign(amz_date, scope, canonical)
    key = signing_key(known.secret_access_key, parsed.date, parsed.region, parsed.service)
    if not hmac.compare_digest(signature(key, to_sign), parsed.signature):
        return Verdict.deny(
            "InvalidSignatureException",
            "The request signature we calculated does not match the signature you provided. "
            "Check your AWS Secret Access Key and signing method. Consult the service "
            "documentation for details.\n\nThe Canonical String for this request should have "
            f"been\n'{canonical}'\n\nThe String-to-Sign should have been\n'{to_sign}'\n",
        )
    return Verdict(True, access_key_id=parsed.access_key_id)
