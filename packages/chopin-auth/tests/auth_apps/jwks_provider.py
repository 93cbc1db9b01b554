"""An identity provider's public side: the JWKS of an RS256 and an ES256 key, served with ``mount_jwks``.

The public PEMs come from the files named by ``JWKS_RSA_PUB`` and ``JWKS_EC_PUB``.
"""

from __future__ import annotations

import os
from pathlib import Path

from chopin_auth import VerificationKey, mount_jwks
from chopin_core import Router


def router() -> Router:
    keys = [
        VerificationKey.from_pem("RS256", Path(os.environ["JWKS_RSA_PUB"]).read_bytes(), kid="rsa-1"),
        VerificationKey.from_pem("ES256", Path(os.environ["JWKS_EC_PUB"]).read_bytes(), kid="ec-1"),
    ]
    return mount_jwks(Router(), keys, max_age=120)
