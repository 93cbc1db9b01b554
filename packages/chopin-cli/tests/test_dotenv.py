"""The .env reader."""

from __future__ import annotations

from pathlib import Path

import pytest
from chopin_cli.dotenv import parse_dotenv, read_dotenv
from chopin_cli.errors import ProjectError


def test_parse_dotenv_forms() -> None:
    text = "# c\n\nA=1\nexport B = two words # note\nC='x # y'\nD=\"q\"\nE=\n"
    assert parse_dotenv(text) == {"A": "1", "B": "two words", "C": "x # y", "D": "q", "E": ""}


@pytest.mark.parametrize(
    ("text", "fragment"), [("NOPE\n", ".env:1"), ("A=1\n2B=3\n", ".env:2"), ("A='x\n", "unclosed")]
)
def test_parse_dotenv_errors_name_the_line(text: str, fragment: str) -> None:
    with pytest.raises(ProjectError) as info:
        parse_dotenv(text)
    assert fragment in str(info.value)


def test_read_dotenv_missing_file_is_empty(tmp_path: Path) -> None:
    assert read_dotenv(tmp_path / ".env") == {}
