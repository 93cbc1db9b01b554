"""The root README: its app serves what it says, and its `./dev test ... -k` selects tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from chopin_testkit import LocalPg
from chopin_testkit.readme import Sample, dev_test_selection_problems, readme_samples
from chopin_testkit.samplerun import SampleEnv, run_sample, scratch_database

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
SAMPLES = readme_samples(README)


@pytest.fixture(scope="module")
def readme_db(local_pg: LocalPg) -> Iterator[LocalPg]:
    with scratch_database(local_pg, "readme_root") as db:
        yield db


@pytest.mark.parametrize("sample", SAMPLES, ids=[s.id for s in SAMPLES])
def test_readme_sample_runs_as_written(sample: Sample, readme_db: LocalPg, tmp_path: Path) -> None:
    if sample.skip_reason:
        pytest.skip(sample.skip_reason)
    served = run_sample(sample, SampleEnv(cwd=tmp_path, database=readme_db))
    if sample.serves:
        assert served is not None
        if 'Response.text("Hello, World!")' in sample.blocks[-1].code:  # "A first app"
            assert (served.status, served.body) == (200, b"Hello, World!")
        else:
            assert served.status < 500, served.head


def test_readme_dev_test_selections_select_tests() -> None:
    # `./dev test -e chopin-core -- -k pipelining` once selected nothing (issue 15, item 17).
    assert dev_test_selection_problems(README, ROOT) == []


def test_every_package_readme_dev_test_selection_selects_tests() -> None:
    problems = [
        p for readme in sorted(ROOT.glob("packages/*/README.md")) for p in dev_test_selection_problems(readme, ROOT)
    ]
    assert problems == []
