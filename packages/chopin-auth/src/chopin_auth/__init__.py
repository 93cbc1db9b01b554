"""chopin-auth: JWT, JWKS, roles and scopes, revocation across workers, Argon2id and OAuth PKCE for chopin-core.

The crypto is PyJWT's, cryptography's and argon2-cffi's; this package pins
algorithms, checks claims, wires tokens into chopin-core handlers and middleware,
and keeps revocations in step across pre-forked workers (``PgRevocations`` in
:mod:`chopin_auth.revocation_pg`, which needs chopin-pg).
"""

from __future__ import annotations

from chopin_core.hooks import add_startup_check

from .blacklist import MAX_JTI_LENGTH, MemoryRevocations, TokenBlacklist
from .errors import (
    AlreadyInitialized,
    AuthError,
    AuthRejected,
    BlacklistFull,
    EncodingKeyMissing,
    Expired,
    Forbidden,
    InvalidKey,
    InvalidParameters,
    InvalidToken,
    JwksUnavailable,
    MalformedHash,
    ManagerNotInitialized,
    MissingToken,
    OAuthError,
    PasswordTooLong,
    RevocationUnavailable,
    Revoked,
    TokenEndpointError,
)
from .extract import Auth, auth_errors, bearer_token, extract, verified_payload
from .jwks import JWKS_PATH, JwksClient, jwks_document, mount_jwks
from .keys import MIN_HMAC_KEY_BYTES, MIN_RSA_KEY_BITS, Algorithm, KeySet, SigningKey, VerificationKey
from .oauth import AuthorizationRequest, OAuthClient, OAuthClientConfig, TokenResponse
from .passwords import (
    MAX_PASSWORD_BYTES,
    PasswordHasher,
    ahash_password,
    averify_password,
    hash_password,
    verify_password,
)
from .pkce import PkcePair, code_challenge, code_verifier, generate_nonce, generate_state, verify_code_challenge
from .registry import error_handler, init_jwt_manager, jwt_manager, set_error_handler
from .responses import default_error_response
from .roles import granted_scopes, has_role, require_role, require_scope
from .startup import check_jwt_manager
from .tokens import JwtConfig, JwtManager, Validation
from .types import ErrorHandler, KeySource, RevocationBackend, Role, RoleCheck

__version__ = "0.1.0"

# Routes that need the JWT manager are found before the server listens, not by a 500 on the first request.
add_startup_check(check_jwt_manager)

__all__ = [
    "JWKS_PATH",
    "MAX_JTI_LENGTH",
    "MAX_PASSWORD_BYTES",
    "MIN_HMAC_KEY_BYTES",
    "MIN_RSA_KEY_BITS",
    "Algorithm",
    "AlreadyInitialized",
    "Auth",
    "AuthError",
    "AuthRejected",
    "AuthorizationRequest",
    "BlacklistFull",
    "EncodingKeyMissing",
    "ErrorHandler",
    "Expired",
    "Forbidden",
    "InvalidKey",
    "InvalidParameters",
    "InvalidToken",
    "JwksClient",
    "JwksUnavailable",
    "JwtConfig",
    "JwtManager",
    "KeySet",
    "KeySource",
    "MalformedHash",
    "ManagerNotInitialized",
    "MemoryRevocations",
    "MissingToken",
    "OAuthClient",
    "OAuthClientConfig",
    "OAuthError",
    "PasswordHasher",
    "PasswordTooLong",
    "PkcePair",
    "RevocationBackend",
    "RevocationUnavailable",
    "Revoked",
    "Role",
    "RoleCheck",
    "SigningKey",
    "TokenBlacklist",
    "TokenEndpointError",
    "TokenResponse",
    "Validation",
    "VerificationKey",
    "__version__",
    "ahash_password",
    "auth_errors",
    "averify_password",
    "bearer_token",
    "code_challenge",
    "code_verifier",
    "default_error_response",
    "error_handler",
    "extract",
    "generate_nonce",
    "generate_state",
    "granted_scopes",
    "has_role",
    "hash_password",
    "init_jwt_manager",
    "jwks_document",
    "jwt_manager",
    "mount_jwks",
    "require_role",
    "require_scope",
    "set_error_handler",
    "verified_payload",
    "verify_code_challenge",
    "verify_password",
]
