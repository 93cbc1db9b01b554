"""JWT, roles and scopes, revocation across workers, Argon2id passwords and OAuth PKCE for chopin-core."""

from __future__ import annotations

__all__: list[str] = []
