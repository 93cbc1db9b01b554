"""chopin-auth's README: its example is examples/app.py, word for word, and every Python block runs as written.

The integration test serves examples/app.py with four workers; here each block runs in a
subprocess (chopin_testkit.readme) against a scratch database on the local server.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from chopin_testkit import LocalPg
from chopin_testkit.readme import Sample, readme_samples
from chopin_testkit.samplerun import SampleEnv, run_sample, scratch_database

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = readme_samples(ROOT / "README.md")


def test_readme_example_is_the_served_file() -> None:
    readme = (ROOT / "README.md").read_text()
    example = (ROOT / "examples" / "app.py").read_text()
    assert f"```python\n{example}```" in readme


def test_example_compiles() -> None:
    source = (ROOT / "examples" / "app.py").read_text()
    compile(source, "examples/app.py", "exec")


@pytest.fixture(scope="module")
def readme_db(local_pg: LocalPg) -> Iterator[LocalPg]:
    with scratch_database(local_pg, "readme_auth") as db:
        yield db


@pytest.mark.parametrize("sample", SAMPLES, ids=[s.id for s in SAMPLES])
def test_readme_sample_runs_as_written(
    sample: Sample,
    readme_db: LocalPg,
    tmp_path: Path,
    rsa_pems: tuple[bytes, bytes],
    ec_pems: tuple[bytes, bytes],
) -> None:
    """Each block runs in a subprocess; the example is served (as __main__) and answers."""
    if sample.skip_reason:
        pytest.skip(sample.skip_reason)
    for name, pem in zip(("rsa.key", "rsa.pub", "ec.key", "ec.pub"), (*rsa_pems, *ec_pems), strict=True):
        (tmp_path / name).write_bytes(pem)
    served = run_sample(sample, SampleEnv(cwd=tmp_path, database=readme_db, env={"JWT_SECRET": "x" * 64}))
    if sample.serves:
        assert served is not None
        assert served.status == 404  # the example routes /login, /me, /admin/report and /logout only
