"""The README's example is examples/app.py, word for word (the integration test serves that file)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_readme_example_is_the_served_file() -> None:
    readme = (ROOT / "README.md").read_text()
    example = (ROOT / "examples" / "app.py").read_text()
    assert f"```python\n{example}```" in readme


def test_example_compiles() -> None:
    source = (ROOT / "examples" / "app.py").read_text()
    compile(source, "examples/app.py", "exec")
