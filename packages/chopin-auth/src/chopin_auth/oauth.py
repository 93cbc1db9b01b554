"""A minimal OAuth 2.1 authorization-code client with PKCE (RFC 6749 4.1, RFC 7636, RFC 9207).

Three steps: :meth:`OAuthClient.authorization_request` builds the URL to send the
user to (with a fresh state, nonce and S256 challenge), :meth:`OAuthClient.parse_callback`
checks the redirect back (state first, then error, then code, and the ``iss``
parameter when an issuer is configured) and :meth:`OAuthClient.exchange_code`
posts the code and verifier to the token endpoint.  The exchange uses the standard
library's ``urllib``: no redirects followed, a timeout and a size limit on the answer.
Endpoints must be ``https`` unless they are on a loopback address (OAuth 2.1 1.5).
"""

from __future__ import annotations

import base64
import dataclasses
import ipaddress
import json
import secrets
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import Any, NoReturn

from .errors import OAuthError, TokenEndpointError
from .pkce import PkcePair, generate_nonce, generate_state

__all__ = ["AuthorizationRequest", "OAuthClient", "OAuthClientConfig", "TokenResponse"]


def _is_loopback(host: str | None) -> bool:
    if host is None:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_endpoint(name: str, url: str) -> None:
    """Refuse ``url`` unless it is ``https``, or ``http`` on a loopback host, without a fragment.

    Raises:
        ValueError: naming ``name`` and the URL.
    """
    parts = urllib.parse.urlsplit(url)
    if parts.fragment:
        raise ValueError(f"{name}: must not have a fragment, got {url!r}")
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and _is_loopback(parts.hostname):
        return
    raise ValueError(f"{name}: expected an https URL (http only on a loopback host), got {url!r}")


@dataclasses.dataclass(frozen=True, slots=True)
class OAuthClientConfig:
    """A client registered with an authorization server.

    Attributes:
        client_id: the client identifier.
        authorize_url: the authorization endpoint.
        token_url: the token endpoint.
        redirect_uri: where the server sends the user back (must match the registration).
        client_secret: for a confidential client (sent with HTTP Basic, RFC 6749 2.3.1);
            ``None`` for a public client (``client_id`` in the body).
        scopes: the scopes asked for by default.
        issuer: the server's issuer identifier; when set, the callback's ``iss`` must match (RFC 9207).
        timeout: seconds allowed for the token request (10).
        max_response_bytes: a longer token response is refused (64 KiB).
        trust_env: use the ``*_proxy`` environment variables (as ``urllib`` does).
    """

    client_id: str
    authorize_url: str
    token_url: str
    redirect_uri: str
    client_secret: str | None = None
    scopes: tuple[str, ...] = ()
    issuer: str | None = None
    timeout: float = 10.0
    max_response_bytes: int = 65536
    trust_env: bool = True

    def __post_init__(self) -> None:
        if not self.client_id:
            raise ValueError("client_id: expected a non-empty string")
        check_endpoint("authorize_url", self.authorize_url)
        check_endpoint("token_url", self.token_url)
        redirect = urllib.parse.urlsplit(self.redirect_uri)
        if not redirect.scheme or redirect.fragment:
            raise ValueError(f"redirect_uri: expected an absolute URI without fragment, got {self.redirect_uri!r}")
        if self.timeout <= 0:
            raise ValueError(f"timeout: expected > 0 seconds, got {self.timeout}")
        if self.max_response_bytes <= 0:
            raise ValueError(f"max_response_bytes: expected > 0, got {self.max_response_bytes}")


@dataclasses.dataclass(frozen=True, slots=True)
class AuthorizationRequest:
    """One authorization attempt; keep it (in the user's session) until the callback.

    Attributes:
        url: where to send the user.
        state: the anti-CSRF value the callback must return.
        nonce: the OpenID Connect nonce sent along (check it in an ID token).
        code_verifier: the PKCE verifier for the exchange.
    """

    url: str
    state: str
    nonce: str
    code_verifier: str


@dataclasses.dataclass(frozen=True, slots=True)
class TokenResponse:
    """A successful token response (RFC 6749 5.1).

    Attributes:
        access_token: the token.
        token_type: ``Bearer``.
        expires_in: seconds of validity, when given.
        refresh_token, scope, id_token: when given.
        raw: the whole JSON object.
    """

    access_token: str
    token_type: str
    expires_in: int | None
    refresh_token: str | None
    scope: str | None
    id_token: str | None
    raw: dict[str, Any]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a redirect is answered as the HTTP error it is


class OAuthClient:
    """The authorization-code flow with PKCE, for one registered client."""

    __slots__ = ("_opener", "config")

    def __init__(self, config: OAuthClientConfig) -> None:
        self.config = config
        handlers: list[urllib.request.BaseHandler] = [_NoRedirect()]
        if not config.trust_env:
            handlers.append(urllib.request.ProxyHandler({}))
        self._opener = urllib.request.build_opener(*handlers)

    def authorization_request(
        self, *, scopes: tuple[str, ...] | None = None, extra_params: Mapping[str, str] | None = None
    ) -> AuthorizationRequest:
        """A fresh authorization request: the URL, and the state, nonce and verifier to keep."""
        config = self.config
        pkce = PkcePair.generate()
        state, nonce = generate_state(), generate_nonce()
        params: dict[str, str] = dict(extra_params or {})
        params.update(
            response_type="code",
            client_id=config.client_id,
            redirect_uri=config.redirect_uri,
            state=state,
            nonce=nonce,
            code_challenge=pkce.challenge,
            code_challenge_method=pkce.method,
        )
        wanted = config.scopes if scopes is None else scopes
        if wanted:
            params["scope"] = " ".join(wanted)
        parts = urllib.parse.urlsplit(config.authorize_url)
        query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
        clash = sorted({name for name, _ in query} & params.keys())
        if clash:
            raise ValueError(f"authorize_url already carries {clash}")
        query.extend(params.items())
        url = urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query, quote_via=urllib.parse.quote)))
        return AuthorizationRequest(url, state, nonce, pkce.verifier)

    def parse_callback(self, callback: str, request: AuthorizationRequest) -> str:
        """The authorization code from the redirect back (a full URL or its query string).

        Raises:
            OAuthError: ``state_mismatch`` (missing or wrong state), ``issuer_mismatch``,
                the server's error (``access_denied`` …), or ``invalid_callback``.
        """
        query = urllib.parse.urlsplit(callback).query if "?" in callback or "://" in callback else callback
        pairs = urllib.parse.parse_qsl(query, keep_blank_values=True)
        params: dict[str, str] = {}
        for name, value in pairs:
            if name in params:
                raise OAuthError("invalid_callback", f"parameter {name!r} appears twice")
            params[name] = value
        state = params.get("state")
        if state is None or not secrets.compare_digest(state.encode(), request.state.encode()):
            raise OAuthError("state_mismatch", "the callback's state is not the one sent")
        issuer = self.config.issuer
        if issuer is not None and params.get("iss") != issuer:
            raise OAuthError("issuer_mismatch", f"expected iss {issuer!r}, got {params.get('iss')!r}")
        if "error" in params:
            raise OAuthError(params["error"], params.get("error_description", ""))
        code = params.get("code")
        if not code:
            raise OAuthError("invalid_callback", "no code in the callback")
        return code

    def exchange_code(self, code: str, request: AuthorizationRequest) -> TokenResponse:
        """Exchange ``code`` (with the request's verifier) for tokens at the token endpoint.

        Raises:
            TokenEndpointError: the endpoint refused (its ``error`` code), could not be
                reached, or answered with something that is not a bearer token response.
        """
        config = self.config
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": config.redirect_uri,
            "code_verifier": request.code_verifier,
        }
        headers = {"Accept": "application/json", "Content-Type": "application/x-www-form-urlencoded"}
        if config.client_secret is None:
            form["client_id"] = config.client_id
        else:
            pair = (
                f"{urllib.parse.quote(config.client_id, safe='')}:{urllib.parse.quote(config.client_secret, safe='')}"
            )
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode("ascii")
        data = urllib.parse.urlencode(form).encode()
        req = urllib.request.Request(config.token_url, data=data, headers=headers, method="POST")
        try:
            with self._opener.open(req, timeout=config.timeout) as resp:
                status = resp.status
                body = resp.read(config.max_response_bytes + 1)
        except urllib.error.HTTPError as exc:
            with exc:
                body = exc.read(config.max_response_bytes + 1)
            _raise_error_response(exc.code, body, config.max_response_bytes)
        except (urllib.error.URLError, OSError) as exc:
            raise TokenEndpointError("unreachable", f"token endpoint {config.token_url}: {exc}") from None
        if len(body) > config.max_response_bytes:
            raise TokenEndpointError(
                "invalid_response", f"over max_response_bytes ({config.max_response_bytes})", status
            )
        return _token_response(body, status)


def _raise_error_response(status: int, body: bytes, limit: int) -> NoReturn:
    error, description = "http_error", f"HTTP {status}"
    if len(body) <= limit:
        try:
            document = json.loads(body)
        except ValueError:
            document = None
        if isinstance(document, dict) and isinstance(document.get("error"), str):
            error = document["error"]
            desc = document.get("error_description")
            description = desc if isinstance(desc, str) else ""
    raise TokenEndpointError(error, description, status)


def _token_response(body: bytes, status: int) -> TokenResponse:
    try:
        document = json.loads(body)
    except ValueError:
        raise TokenEndpointError("invalid_response", "token response is not JSON", status) from None
    if not isinstance(document, dict):
        raise TokenEndpointError("invalid_response", "token response is not a JSON object", status)
    access_token = document.get("access_token")
    token_type = document.get("token_type")
    if not isinstance(access_token, str) or not access_token:
        raise TokenEndpointError("invalid_response", "token response has no access_token", status)
    if not isinstance(token_type, str) or token_type.lower() != "bearer":
        raise TokenEndpointError("invalid_response", f"token_type {token_type!r}, expected Bearer", status)
    expires_in = document.get("expires_in")
    if expires_in is not None and (isinstance(expires_in, bool) or not isinstance(expires_in, int) or expires_in < 0):
        raise TokenEndpointError(
            "invalid_response", f"expires_in {expires_in!r}, expected a non-negative integer", status
        )

    def optional(name: str) -> str | None:
        value = document.get(name)
        if value is not None and not isinstance(value, str):
            raise TokenEndpointError("invalid_response", f"{name} is {type(value).__name__}, expected string", status)
        return value

    return TokenResponse(
        access_token=access_token,
        token_type=token_type,
        expires_in=expires_in,
        refresh_token=optional("refresh_token"),
        scope=optional("scope"),
        id_token=optional("id_token"),
        raw=document,
    )
