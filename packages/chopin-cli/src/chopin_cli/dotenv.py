"""A small ``.env`` reader: ``KEY=value`` lines, ``#`` comments, optional quotes and ``export``.

Only what projects write by hand is understood; a line that is not ``KEY=value`` is an
error naming its line number, so a typo never silently drops a setting.
"""

from __future__ import annotations

import re
from pathlib import Path

from .errors import ProjectError

__all__ = ["parse_dotenv", "read_dotenv"]

_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
#: The largest .env file read (a guard against pointing the reader at a dump).
MAX_DOTENV_SIZE = 1 << 20


def parse_dotenv(text: str, source: str = ".env") -> dict[str, str]:
    """The variables ``text`` sets, in order.

    Raises:
        ProjectError: a line is not ``KEY=value`` or a quote is not closed.
    """
    values: dict[str, str] = {}
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not _KEY.match(key):
            raise ProjectError(f"{source}:{lineno}: expected KEY=value, got {raw.strip()!r}")
        value = value.strip()
        if value[:1] in ("'", '"'):
            quote = value[0]
            end = value.find(quote, 1)
            if end < 0:
                raise ProjectError(f"{source}:{lineno}: unclosed {quote} quote")
            value = value[1:end]
        else:
            value = value.split(" #", 1)[0].rstrip()
        values[key] = value
    return values


def read_dotenv(path: Path) -> dict[str, str]:
    """The variables the file at ``path`` sets; empty when it does not exist."""
    try:
        if path.stat().st_size > MAX_DOTENV_SIZE:
            raise ProjectError(f"{path}: larger than {MAX_DOTENV_SIZE} bytes; is this a .env file?")
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise ProjectError(f"{path}: cannot read: {exc}") from None
    return parse_dotenv(text, str(path))
