"""Every Python block of chopin-testkit's README runs as written (its test file under pytest)."""

from __future__ import annotations

from pathlib import Path

import pytest
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


@pytest.mark.parametrize("sample", SAMPLES, ids=[s.id for s in SAMPLES])
def test_readme_sample_runs_as_written(sample: Sample, tmp_path: Path) -> None:
    if sample.skip_reason:
        pytest.skip(sample.skip_reason)
    # The README's own example reads the README of the project it runs in: this one.
    (tmp_path / "README.md").write_text(PROJECT_README)
    run_sample(sample, SampleEnv(cwd=tmp_path))
