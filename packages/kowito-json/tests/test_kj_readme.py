"""Every Python block of kowito-json's README runs as written (chopin_testkit.readme)."""

from __future__ import annotations

from pathlib import Path

import pytest
from chopin_testkit.readme import Sample, json_block_problems, readme_samples
from chopin_testkit.samplerun import SampleEnv, run_sample

README = Path(__file__).resolve().parents[1] / "README.md"
SAMPLES = readme_samples(README)


@pytest.mark.parametrize("sample", SAMPLES, ids=[s.id for s in SAMPLES])
def test_readme_sample_runs_as_written(sample: Sample, tmp_path: Path) -> None:
    if sample.skip_reason:
        pytest.skip(sample.skip_reason)
    run_sample(sample, SampleEnv(cwd=tmp_path))


def test_readme_json_blocks_parse() -> None:
    assert json_block_problems(README) == []
