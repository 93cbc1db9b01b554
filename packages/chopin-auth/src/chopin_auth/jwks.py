"""JSON Web Key Sets (RFC 7517 5): publish our public keys, and verify with a provider's.

:func:`mount_jwks` serves ``/.well-known/jwks.json`` for the RS256/ES256 keys of a
:class:`~chopin_auth.JwtManager` (never an HS256 secret).  :class:`JwksClient` is a
:class:`~chopin_auth.types.KeySource` for a provider's JWKS URL:

- the set is fetched on first use with ``urllib`` (no redirects, a timeout, a size
  limit) and kept for the response's ``Cache-Control: max-age`` (else ``default_ttl``),
  clamped to ``[refetch_cooldown, max_ttl]``;
- a token naming a ``kid`` the cached set lacks triggers one refetch (the provider
  rotated), but at most one fetch per ``refetch_cooldown``, so a flood of made-up
  ``kid`` values costs the provider one request per cooldown, not one per token;
- it fails closed: when the set expired and the provider cannot be reached (or answers
  something that is not a key set) every token is refused with :class:`JwksUnavailable`
  (503), and a failed fetch is not retried before the cooldown has passed either.

Algorithms are pinned: keys whose ``alg`` (or ``kty``/``crv``) is outside ``algorithms``
are ignored, and a token is checked only with its key's own algorithm.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable
from typing import Any, Final

from chopin_core import Context, Response, Router

from .errors import InvalidKey, JwksUnavailable
from .keys import KeySet, VerificationKey, jwk_algorithm
from .oauth import check_endpoint
from .tokens import JwtManager

__all__ = ["JWKS_PATH", "JwksClient", "jwks_document", "mount_jwks"]

JWKS_PATH: Final = "/.well-known/jwks.json"
"""Where :func:`mount_jwks` serves the key set by default (the OpenID Connect convention)."""

_log = logging.getLogger("chopin_auth.jwks")
_MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*\"?(\d{1,10})\"?\s*(?:,|$)", re.IGNORECASE)


def jwks_document(keys: JwtManager | Iterable[VerificationKey]) -> dict[str, Any]:
    """The JWKS (``{"keys": [...]}``) of the RS256/ES256 keys in ``keys``; HS256 secrets are left out.

    Raises:
        InvalidKey: there is no public key to publish.
    """
    source: Iterable[VerificationKey]
    if isinstance(keys, JwtManager):
        if not isinstance(keys.config.keys, KeySet):
            raise InvalidKey("jwks: this manager's keys come from a key source, not a KeySet of its own")
        source = keys.config.keys
    else:
        source = keys
    published = [key.to_jwk() for key in source if key.algorithm != "HS256"]
    if not published:
        raise InvalidKey("jwks: expected at least one RS256 or ES256 key to publish, got none")
    return {"keys": published}


def mount_jwks(
    router: Router, keys: JwtManager | Iterable[VerificationKey], *, path: str = JWKS_PATH, max_age: int = 300
) -> Router:
    """Serve ``keys``' JWKS at ``GET path`` on ``router``, with ``Cache-Control: public, max-age``.

    The document is built once, here; mount again after a rotation.  Returns ``router``.

    Raises:
        InvalidKey: there is no public key to publish.
        ValueError: ``max_age`` is negative.
    """
    if max_age < 0:
        raise ValueError(f"max_age: expected >= 0 seconds, got {max_age}")
    body = json.dumps(jwks_document(keys), separators=(",", ":")).encode()
    cache_control = f"public, max-age={max_age}"

    def jwks(ctx: Context) -> Response:
        return Response.json_bytes(body).with_header("Cache-Control", cache_control)

    router.get(path, jwks)
    return router


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a redirect is answered as the HTTP error it is


class JwksClient:
    """A provider's JWKS URL as a :class:`~chopin_auth.types.KeySource`: cached, refetched, failing closed.

    One client per process (a worker copies it at fork); its cache and counters are its own.
    Use it with :meth:`JwtManager.from_jwks <chopin_auth.JwtManager.from_jwks>`.

    Attributes:
        url: the JWKS URL (``https``, or ``http`` on a loopback host).
        fetches: how many fetches were attempted (for metrics and tests).
    """

    def __init__(
        self,
        url: str,
        *,
        algorithms: Iterable[str] = ("RS256", "ES256"),
        default_ttl: float = 300.0,
        max_ttl: float = 86400.0,
        refetch_cooldown: float = 30.0,
        timeout: float = 5.0,
        max_response_bytes: int = 262144,
        max_keys: int = 100,
        trust_env: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Describe the provider; nothing is fetched until the first token needs a key.

        Args:
            url: the JWKS URL.
            algorithms: the algorithms accepted (``RS256``, ``ES256``); other keys are ignored.
            default_ttl: seconds a set is kept when the answer has no ``max-age``.
            max_ttl: the longest a set is kept, whatever ``max-age`` says.
            refetch_cooldown: the least time between two fetches (unknown ``kid``, failures);
                also the shortest time a set is kept.
            timeout: seconds for one fetch.
            max_response_bytes: a longer answer is refused.
            max_keys: a set with more keys is refused.
            trust_env: use the ``*_proxy`` environment variables.
            clock: a monotonic clock (tests pass their own).

        Raises:
            ValueError: a bad URL or setting.
        """
        check_endpoint("jwks url", url)
        pinned = frozenset(algorithms)
        unknown = sorted(pinned - {"RS256", "ES256"})
        if unknown or not pinned:
            raise ValueError(f"algorithms: expected RS256 and/or ES256, got {sorted(pinned)}")
        for name, value in (("default_ttl", default_ttl), ("max_ttl", max_ttl), ("timeout", timeout)):
            if value <= 0:
                raise ValueError(f"{name}: expected > 0 seconds, got {value}")
        if refetch_cooldown < 0:
            raise ValueError(f"refetch_cooldown: expected >= 0 seconds, got {refetch_cooldown}")
        if max_response_bytes <= 0 or max_keys <= 0:
            raise ValueError(f"max_response_bytes and max_keys: expected > 0, got {max_response_bytes}, {max_keys}")
        self.url = url
        self._algorithms = pinned
        self.default_ttl = default_ttl
        self.max_ttl = max_ttl
        self.refetch_cooldown = refetch_cooldown
        self.timeout = timeout
        self.max_response_bytes = max_response_bytes
        self.max_keys = max_keys
        self._clock = clock
        handlers: list[urllib.request.BaseHandler] = [_NoRedirect()]
        if not trust_env:
            handlers.append(urllib.request.ProxyHandler({}))
        self._opener = urllib.request.build_opener(*handlers)
        self._lock = threading.Lock()
        self._keys: KeySet | None = None
        self._expires_at = 0.0
        self._last_attempt: float | None = None
        self._last_error: JwksUnavailable | None = None
        self.fetches = 0

    # -- KeySource ---------------------------------------------------------------------

    @property
    def algorithms(self) -> frozenset[str]:
        """The pinned algorithms."""
        return self._algorithms

    def __len__(self) -> int:
        return len(self._keys) if self._keys is not None else 0

    def candidates(self, kid: object) -> list[VerificationKey]:
        """The keys for a token whose header names ``kid``, fetching or refetching the set as needed.

        Raises:
            JwksUnavailable: no fresh set is cached and the provider cannot give one.
        """
        with self._lock:
            now = self._clock()
            if self._keys is None or now >= self._expires_at:
                self._refresh(now)
            assert self._keys is not None
            found = self._keys.candidates(kid)
            if found or not isinstance(kid, str) or not self._cooled_down(now):
                return found
            # An unknown kid: the provider may have rotated since the last fetch.
            try:
                self._refresh(now)
            except JwksUnavailable as exc:
                # The cached set is still fresh: the token is refused as an unknown kid, not with a 503.
                _log.warning("refetching the JWKS for unknown kid %r failed: %s", kid, exc.reason)
                return []
            return self._keys.candidates(kid)

    def refresh(self) -> None:
        """Fetch the set now, whatever the cache and the cooldown say.

        Raises:
            JwksUnavailable: the fetch failed (the previous set, if any, is dropped only once it expires).
        """
        with self._lock:
            self._fetch(self._clock())

    # -- fetching ----------------------------------------------------------------------

    def _cooled_down(self, now: float) -> bool:
        return self._last_attempt is None or now - self._last_attempt >= self.refetch_cooldown

    def _refresh(self, now: float) -> None:
        """Fetch unless the last attempt was too recent; then, with nothing fresh, fail with its error."""
        if self._cooled_down(now):
            self._fetch(now)
            return
        raise self._last_error or JwksUnavailable(self.url, "the key set expired and the cooldown has not passed")

    def _fetch(self, now: float) -> None:
        self._last_attempt = now
        self.fetches += 1
        try:
            keys, ttl = self._download()
        except JwksUnavailable as exc:
            self._last_error = exc
            _log.error("%s", exc)
            raise
        self._keys = keys
        self._expires_at = now + ttl
        self._last_error = None

    def _download(self) -> tuple[KeySet, float]:
        request = urllib.request.Request(self.url, headers={"Accept": "application/json"})
        limit = self.max_response_bytes
        try:
            with self._opener.open(request, timeout=self.timeout) as resp:
                body = resp.read(limit + 1)
                cache_control = resp.headers.get("Cache-Control", "")
        except urllib.error.HTTPError as exc:
            exc.close()
            raise JwksUnavailable(self.url, f"answered HTTP {exc.code}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise JwksUnavailable(self.url, f"unreachable ({reason})") from None
        if len(body) > limit:
            raise JwksUnavailable(self.url, f"answer over max_response_bytes ({limit})")
        return self._parse(body), self._ttl(cache_control)

    def _ttl(self, cache_control: str) -> float:
        found = _MAX_AGE.search(cache_control)
        ttl = float(found.group(1)) if found else self.default_ttl
        return min(max(ttl, self.refetch_cooldown), self.max_ttl)

    def _parse(self, body: bytes) -> KeySet:
        try:
            document = json.loads(body)
        except ValueError:
            raise JwksUnavailable(self.url, "answer is not JSON") from None
        entries = document.get("keys") if isinstance(document, dict) else None
        if not isinstance(entries, list):
            raise JwksUnavailable(self.url, 'expected a JSON object with a "keys" list')
        if len(entries) > self.max_keys:
            raise JwksUnavailable(self.url, f"{len(entries)} keys, over max_keys ({self.max_keys})")
        usable: dict[object, VerificationKey] = {}
        for index, jwk in enumerate(entries):
            if not isinstance(jwk, dict) or jwk.get("use", "sig") != "sig":
                continue
            if jwk_algorithm(jwk) not in self._algorithms:
                continue  # another algorithm: pinned out, never a candidate
            try:
                key = VerificationKey.from_jwk(jwk)
            except InvalidKey as exc:
                _log.warning("JWKS %s: key %d skipped: %s", self.url, index, exc)
                continue
            if key.kid in usable:
                raise JwksUnavailable(self.url, f"kid {key.kid!r} appears twice")
            usable[key.kid] = key
        if not usable:
            raise JwksUnavailable(self.url, f"no usable {'/'.join(sorted(self._algorithms))} signing key in the set")
        return KeySet(usable.values())

    def __repr__(self) -> str:
        return f"<JwksClient {self.url} keys={len(self)} fetches={self.fetches}>"
