"""The authorization-code flow with PKCE against a small authorization server written here.

The server (``http.server`` on 127.0.0.1, a free port) does what RFC 6749 4.1 and
RFC 7636 4.6 ask of one: it checks the authorization request, redirects back with
a one-time code and the state, and at the token endpoint checks the code, the
redirect URI, the client and ``BASE64URL(SHA256(code_verifier)) == code_challenge``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from chopin_auth import OAuthClient, OAuthClientConfig, OAuthError, TokenEndpointError

CLIENT_ID = "chopin-app"
REDIRECT = "http://127.0.0.1:9/callback"  # never contacted: the test reads the Location header


class AuthServer:
    def __init__(self) -> None:
        self.codes: dict[str, dict[str, str]] = {}
        self.confidential: dict[str, str] = {"confidential-app": "s3cret:/+"}
        self.deny = False
        self.token_override: tuple[int, bytes, str] | None = None
        self.token_requests: list[dict[str, str]] = []
        self.basic_auth: list[str | None] = []
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def send(self, status: int, body: bytes, content_type: str = "application/json", **headers: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                url = urllib.parse.urlsplit(self.path)
                q = dict(urllib.parse.parse_qsl(url.query))
                ok = (
                    url.path == "/authorize"
                    and q.get("response_type") == "code"
                    and q.get("client_id") in (CLIENT_ID, *server.confidential)
                    and q.get("redirect_uri") == REDIRECT
                    and q.get("code_challenge_method") == "S256"
                    and len(q.get("code_challenge", "")) == 43
                    and q.get("state")
                )
                if not ok:
                    self.send(400, b'{"error":"invalid_request"}')
                    return
                params = {"state": q["state"], "iss": server.base}
                if server.deny:
                    params["error"] = "access_denied"
                    params["error_description"] = "the user said no"
                else:
                    code = secrets.token_urlsafe(16)
                    server.codes[code] = q
                    params["code"] = code
                self.send(302, b"", Location=f"{REDIRECT}?{urllib.parse.urlencode(params)}")

            def do_POST(self) -> None:
                if self.path == "/redirect-me":
                    self.send(307, b"", Location="/token")
                    return
                length = int(self.headers.get("Content-Length", "0"))
                form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode()))
                server.token_requests.append(form)
                server.basic_auth.append(self.headers.get("Authorization"))
                if server.token_override is not None:
                    status, body, content_type = server.token_override
                    self.send(status, body, content_type)
                    return
                client_id = form.get("client_id")
                auth = self.headers.get("Authorization")
                if auth:
                    raw = base64.b64decode(auth.removeprefix("Basic ")).decode()
                    user, _, password = raw.partition(":")
                    client_id = urllib.parse.unquote(user)
                    if server.confidential.get(client_id) != urllib.parse.unquote(password):
                        self.send(401, b'{"error":"invalid_client"}')
                        return
                request = server.codes.pop(form.get("code", ""), None)  # one use only
                if (
                    form.get("grant_type") != "authorization_code"
                    or request is None
                    or request["client_id"] != client_id
                    or form.get("redirect_uri") != request["redirect_uri"]
                ):
                    self.send(400, b'{"error":"invalid_grant","error_description":"unknown code"}')
                    return
                digest = hashlib.sha256(form.get("code_verifier", "").encode()).digest()
                if base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != request["code_challenge"]:
                    self.send(400, b'{"error":"invalid_grant","error_description":"PKCE verification failed"}')
                    return
                token = {
                    "access_token": secrets.token_urlsafe(24),
                    "token_type": "Bearer",
                    "expires_in": 3600,
                    "scope": request.get("scope", ""),
                }
                self.send(200, json.dumps(token).encode())

        return Handler


@pytest.fixture
def auth_server() -> Iterator[AuthServer]:
    server = AuthServer()
    server.thread.start()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()
    server.thread.join(10)


def client_for(server: AuthServer, **overrides: Any) -> OAuthClient:
    fields: dict[str, Any] = {
        "client_id": CLIENT_ID,
        "authorize_url": f"{server.base}/authorize",
        "token_url": f"{server.base}/token",
        "redirect_uri": REDIRECT,
        "scopes": ("openid", "reports:read"),
        "issuer": server.base,
        "trust_env": False,
    }
    fields.update(overrides)
    return OAuthClient(OAuthClientConfig(**fields))


def follow_authorize(url: str) -> str:
    """What the user agent does: GET the authorize URL, return the redirect back."""
    response = httpx.get(url, follow_redirects=False, timeout=10.0)
    assert response.status_code == 302, response.text
    return response.headers["location"]


def test_full_flow(auth_server: AuthServer) -> None:
    client = client_for(auth_server)
    request = client.authorization_request()
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(request.url).query))
    assert query["scope"] == "openid reports:read" and query["nonce"] == request.nonce
    code = client.parse_callback(follow_authorize(request.url), request)
    tokens = client.exchange_code(code, request)
    assert tokens.token_type == "Bearer" and tokens.expires_in == 3600 and tokens.access_token
    assert tokens.scope == "openid reports:read"
    sent = auth_server.token_requests[-1]
    assert sent["code_verifier"] == request.code_verifier and sent["client_id"] == CLIENT_ID
    # the code was single-use at the server
    with pytest.raises(TokenEndpointError) as info:
        client.exchange_code(code, request)
    assert (info.value.error, info.value.http_status) == ("invalid_grant", 400)


def test_wrong_verifier_is_refused_by_the_server(auth_server: AuthServer) -> None:
    client = client_for(auth_server)
    request = client.authorization_request()
    other = client.authorization_request()
    code = client.parse_callback(follow_authorize(request.url), request)
    with pytest.raises(TokenEndpointError, match="PKCE verification failed") as info:
        client.exchange_code(code, other)  # the other attempt's verifier
    assert info.value.error == "invalid_grant"


def test_confidential_client_uses_basic_auth(auth_server: AuthServer) -> None:
    client = client_for(auth_server, client_id="confidential-app", client_secret="s3cret:/+")
    request = client.authorization_request()
    tokens = client.exchange_code(client.parse_callback(follow_authorize(request.url), request), request)
    assert tokens.access_token
    assert "client_id" not in auth_server.token_requests[-1]
    assert (auth_server.basic_auth[-1] or "").startswith("Basic ")
    bad = client_for(auth_server, client_id="confidential-app", client_secret="wrong")
    request = bad.authorization_request()
    with pytest.raises(TokenEndpointError) as info:
        bad.exchange_code(bad.parse_callback(follow_authorize(request.url), request), request)
    assert (info.value.error, info.value.http_status) == ("invalid_client", 401)


def test_state_mismatch_and_missing_state(auth_server: AuthServer) -> None:
    client = client_for(auth_server)
    request = client.authorization_request()
    callback = follow_authorize(request.url)
    with pytest.raises(OAuthError, match="state_mismatch"):
        client.parse_callback(callback, client.authorization_request())
    with pytest.raises(OAuthError, match="state_mismatch"):
        client.parse_callback(f"{REDIRECT}?code=abc", request)


def test_error_callback(auth_server: AuthServer) -> None:
    auth_server.deny = True
    client = client_for(auth_server)
    request = client.authorization_request()
    with pytest.raises(OAuthError) as info:
        client.parse_callback(follow_authorize(request.url), request)
    assert (info.value.error, info.value.description) == ("access_denied", "the user said no")


def test_issuer_mismatch_and_malformed_callbacks(auth_server: AuthServer) -> None:
    client = client_for(auth_server, issuer="https://other.example")
    request = client.authorization_request()
    with pytest.raises(OAuthError, match="issuer_mismatch"):
        client.parse_callback(follow_authorize(request.url), request)
    plain = client_for(auth_server)
    state = urllib.parse.quote(request.state)
    with pytest.raises(OAuthError, match="appears twice"):
        plain.parse_callback(f"state={state}&code=a&code=b", request)
    with pytest.raises(OAuthError, match="no code"):
        plain.parse_callback(f"state={state}&iss={urllib.parse.quote(auth_server.base)}", request)


@pytest.mark.parametrize(
    ("status", "body", "content_type", "error"),
    [
        (200, b"<html>hi</html>", "text/html", "invalid_response"),
        (200, b'{"token_type":"Bearer"}', "application/json", "invalid_response"),
        (200, b'{"access_token":"t","token_type":"mac"}', "application/json", "invalid_response"),
        (
            200,
            b'{"access_token":"t","token_type":"Bearer","expires_in":"soon"}',
            "application/json",
            "invalid_response",
        ),
        (200, b"[1]", "application/json", "invalid_response"),
        (500, b"oops", "text/plain", "http_error"),
        (
            200,
            b'{"access_token":"' + b"x" * 70000 + b'","token_type":"Bearer"}',
            "application/json",
            "invalid_response",
        ),
    ],
)
def test_bad_token_responses(auth_server: AuthServer, status: int, body: bytes, content_type: str, error: str) -> None:
    client = client_for(auth_server)
    request = client.authorization_request()
    code = client.parse_callback(follow_authorize(request.url), request)
    auth_server.token_override = (status, body, content_type)
    with pytest.raises(TokenEndpointError) as info:
        client.exchange_code(code, request)
    assert info.value.error == error


def test_redirects_from_the_token_endpoint_are_not_followed(auth_server: AuthServer) -> None:
    client = client_for(auth_server, token_url=f"{auth_server.base}/redirect-me")
    request = client.authorization_request()
    code = client.parse_callback(follow_authorize(request.url), request)
    with pytest.raises(TokenEndpointError) as info:
        client.exchange_code(code, request)  # a client following the 307 would get a token from /token
    assert (info.value.error, info.value.http_status) == ("http_error", 307)
    assert auth_server.token_requests == []


def test_unreachable_token_endpoint() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = OAuthClient(
        OAuthClientConfig(
            CLIENT_ID, f"http://127.0.0.1:{port}/a", f"http://127.0.0.1:{port}/t", REDIRECT, trust_env=False
        )
    )
    with pytest.raises(TokenEndpointError, match="unreachable"):
        client.exchange_code("c", client.authorization_request())


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("authorize_url", "http://id.example/authorize", "https URL"),
        ("token_url", "ftp://127.0.0.1/token", "https URL"),
        ("token_url", "https://id.example/token#frag", "fragment"),
        ("redirect_uri", "/relative", "absolute URI"),
        ("client_id", "", "client_id"),
        ("timeout", 0, "timeout"),
        ("max_response_bytes", 0, "max_response_bytes"),
    ],
)
def test_config_is_checked(field: str, value: object, message: str) -> None:
    fields: dict[str, Any] = {
        "client_id": CLIENT_ID,
        "authorize_url": "https://id.example/authorize",
        "token_url": "https://id.example/token",
        "redirect_uri": REDIRECT,
    }
    fields[field] = value
    with pytest.raises(ValueError, match=message):
        OAuthClientConfig(**fields)


def test_authorize_url_with_its_own_query() -> None:
    client = OAuthClient(
        OAuthClientConfig(CLIENT_ID, "https://id.example/authorize?tenant=7", "https://id.example/token", REDIRECT)
    )
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(client.authorization_request().url).query)
    assert query["tenant"] == ["7"] and query["client_id"] == [CLIENT_ID]
    clashing = OAuthClient(
        OAuthClientConfig(CLIENT_ID, "https://id.example/authorize?state=x", "https://id.example/token", REDIRECT)
    )
    with pytest.raises(ValueError, match="already carries"):
        clashing.authorization_request()
