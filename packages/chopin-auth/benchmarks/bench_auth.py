"""Per-operation costs of chopin-auth: token encode/decode, revocation checks, Argon2id.

    python packages/chopin-auth/benchmarks/bench_auth.py [--dsn postgres://postgres@127.0.0.1:5432/test] [--seconds 0.5]

Each figure is the median of 5 runs of an operation repeated for about ``--seconds``;
it prints one line per operation.  The PostgreSQL rows need a reachable server.
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from collections.abc import Callable

from chopin_auth import JwtManager, PasswordHasher, TokenBlacklist
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

SECRET = "bench-secret-0123456789abcdef0123456789"


def per_op(fn: Callable[[], object], seconds: float) -> float:
    """Median seconds per call of ``fn`` over 5 runs of about ``seconds`` each."""
    n = 1
    while True:  # calibrate
        start = time.perf_counter()
        for _ in range(n):
            fn()
        took = time.perf_counter() - start
        if took >= seconds / 10:
            break
        n *= 4
    reps = max(1, int(n * seconds / max(took, 1e-9) / 1))
    runs = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(reps):
            fn()
        runs.append((time.perf_counter() - start) / reps)
    return statistics.median(runs)


def show(name: str, seconds: float) -> None:
    if seconds >= 1e-3:
        print(f"{name:<44} {seconds * 1e3:10.2f} ms")
    else:
        print(f"{name:<44} {seconds * 1e6:10.2f} us")


def pems(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> tuple[bytes, bytes]:
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return private, public


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", default="postgres://postgres@127.0.0.1:5432/test")
    parser.add_argument("--seconds", type=float, default=0.5)
    parser.add_argument("--no-pg", action="store_true")
    args = parser.parse_args()
    s = args.seconds
    claims = {"sub": "alice", "role": "admin"}

    hs = JwtManager(SECRET)
    token = hs.encode(claims)
    show("HS256 encode", per_op(lambda: hs.encode(claims), s))
    show("HS256 decode", per_op(lambda: hs.decode(token), s))
    rs = JwtManager.from_rsa_pem(*pems(rsa.generate_private_key(public_exponent=65537, key_size=2048)))
    rs_token = rs.encode(claims)
    show("RS256 encode (2048-bit)", per_op(lambda: rs.encode(claims), s))
    show("RS256 decode (2048-bit)", per_op(lambda: rs.decode(rs_token), s))
    es = JwtManager.from_ec_pem(*pems(ec.generate_private_key(ec.SECP256R1())))
    es_token = es.encode(claims)
    show("ES256 encode", per_op(lambda: es.encode(claims), s))
    show("ES256 decode", per_op(lambda: es.decode(es_token), s))

    memory = TokenBlacklist()
    for i in range(10_000):
        memory.revoke(f"jti-{i}", time.time() + 600)
    show("memory is_revoked (10k entries)", per_op(lambda: memory.is_revoked("jti-5000"), s))
    hs_memory = hs.with_blacklist(memory)
    show("HS256 decode + memory revocation check", per_op(lambda: hs_memory.decode(token), s))

    if not args.no_pg:
        from chopin_auth.revocation_pg import PgRevocations
        from chopin_pg import connect

        table = f"bench_revoked_{uuid.uuid4().hex[:8]}"
        backend = PgRevocations(args.dsn, table=table)
        try:
            pg = TokenBlacklist(backend)
            for i in range(1000):
                pg.revoke(f"jti-{i}", time.time() + 600)
            show("PgRevocations is_revoked (drain + dict)", per_op(lambda: pg.is_revoked("jti-500"), s))
            hs_pg = hs.with_blacklist(pg)
            show("HS256 decode + PgRevocations check", per_op(lambda: hs_pg.decode(token), s))
            counter = iter(range(10**9))
            show("PgRevocations revoke (insert + notify)", per_op(lambda: pg.revoke(f"r-{next(counter)}", None), s))
        finally:
            backend.close()
            with connect(args.dsn) as conn:
                conn.execute(f"DROP TABLE IF EXISTS {table}")

    for name, hasher in (("interactive", PasswordHasher.interactive()), ("sensitive", PasswordHasher.sensitive())):
        hashed = hasher.hash("pw")
        show(f"Argon2id {name} hash", per_op(lambda h=hasher: h.hash("pw"), s))  # type: ignore[misc]
        show(f"Argon2id {name} verify", per_op(lambda h=hasher, x=hashed: h.verify("pw", x), s))  # type: ignore[misc]


if __name__ == "__main__":
    main()
