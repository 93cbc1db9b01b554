"""Keeping benchmarks/RESULTS.md as one file with a section per benchmark script.

Each script replaces only its own section, between ``<!-- section:NAME -->`` and
``<!-- /section:NAME -->``, so running one benchmark never drops another's table.
"""

from __future__ import annotations

from pathlib import Path

ORDER = ("http", "json", "static", "pg")
TITLE = "# Benchmark results\n\nEach section was written by the command it names, on this project's 2-core machine.\n"


def write_section(path: Path, name: str, text: str) -> None:
    """Put ``text`` as section ``name`` of ``path``, keeping the other sections."""
    sections: dict[str, str] = {}
    if path.exists():
        content = path.read_text()
        for other in {*ORDER, name}:
            start, end = f"<!-- section:{other} -->", f"<!-- /section:{other} -->"
            if start in content and end in content:
                sections[other] = content.split(start, 1)[1].split(end, 1)[0].strip("\n")
    sections[name] = text.strip("\n")
    names = [n for n in ORDER if n in sections] + sorted(n for n in sections if n not in ORDER)
    parts = [TITLE]
    for n in names:
        parts.append(f"<!-- section:{n} -->\n{sections[n]}\n<!-- /section:{n} -->\n")
    path.write_text("\n".join(parts))
