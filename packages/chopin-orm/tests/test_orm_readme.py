"""Every Python block of chopin-orm's README runs as written, against a scratch database.

The README's `postgres://` URLs and the `PG*` variables point at a database made for
this module on the local server (and dropped after it); see chopin_testkit.readme.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from chopin_testkit import LocalPg
from chopin_testkit.readme import Sample, readme_samples
from chopin_testkit.samplerun import SampleEnv, run_sample, scratch_database

README = Path(__file__).resolve().parents[1] / "README.md"
SAMPLES = readme_samples(README)


@pytest.fixture(scope="module")
def readme_db(local_pg: LocalPg) -> Iterator[LocalPg]:
    with scratch_database(local_pg, "readme_orm") as db:
        yield db


@pytest.mark.parametrize("sample", SAMPLES, ids=[s.id for s in SAMPLES])
def test_readme_sample_runs_as_written(sample: Sample, readme_db: LocalPg, tmp_path: Path) -> None:
    if sample.skip_reason:
        pytest.skip(sample.skip_reason)
    run_sample(sample, SampleEnv(cwd=tmp_path, database=readme_db))
