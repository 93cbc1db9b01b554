"""Read a README's code blocks as samples, and check what is not run.

`readme_samples(path)` reads a Markdown file and returns its ```` ```python ```` blocks as
`Sample`s, which `chopin_testkit.samplerun.run_sample` executes (each in a fresh Python
subprocess, against a scratch database and on a free port when it serves).

What the README may say about a block, in an HTML comment just before it (invisible
when rendered, visible in the source):

- `<!-- sample: continues -->`: the block runs after the previous sample, in the same
  namespace (one subprocess for the whole chain).
- `<!-- sample: setup` + Python lines + `-->`: code run just before the block, for names
  a fragment takes as given (`router`, `secret`).
- `<!-- sample: raises kowito_json.ValidationError -->`: the block must end by raising
  that exception (its name, with or without the module).
- `<!-- sample: pytest -->`: the block is a test file; it is run by pytest.
- `<!-- sample: skip <reason> -->`: not run; the reason is required.
- `<!-- sample: prelude` + Python lines + `-->` (anywhere): run before every sample of
  the README; `<!-- sample: epilogue` ... `-->` after every sample (not after a `raises`
  or `pytest` one), to use what a sample only declares (compile its routes, call them).

Other code blocks are not run: ```` ```json ```` blocks must parse
(`json_block_problems`), and a `./dev test -e ENV -- -k EXPR` command anywhere in the
text must select at least one test of that environment (`dev_test_selection_problems`).
"""

from __future__ import annotations

import ast
import configparser
import json
import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .errors import TestkitError

MARKER_KINDS = frozenset({"continues", "setup", "raises", "pytest", "skip", "prelude", "epilogue"})

_FENCE = re.compile(r"^```(\S*)\s*$")
_MARKER_START = re.compile(r"^<!--\s*sample:\s*(\w[\w-]*)(.*)$")
_HEADING = re.compile(r"^#{1,6}\s+(.*\S)\s*$")
_SERVE_CALL = re.compile(r"\.serve(_tls)?\(")
_DEV_TEST = re.compile(r"\./dev test\s+-e\s+(\S+)\s+--\s+([^`\n]*)")


class ReadmeError(TestkitError):
    """A README's sample markers are malformed (unknown kind, a skip without a reason, a dangling marker)."""


@dataclass(frozen=True)
class Marker:
    """One `<!-- sample: kind rest -->` comment.

    Attributes:
        kind: one of `MARKER_KINDS`.
        text: what follows the kind (a reason, an exception name, or Python lines).
        line: the comment's first line in the README (1-based).
    """

    kind: str
    text: str
    line: int


@dataclass(frozen=True)
class Block:
    """A fenced code block.

    Attributes:
        lang: the fence's info string (`python`, `sh`, `json`, or empty).
        code: the block's text, ending with a newline.
        line: the line of the block's first code line (1-based).
        heading: the nearest heading above it.
        markers: the sample markers written just before it.
    """

    lang: str
    code: str
    line: int
    heading: str
    markers: tuple[Marker, ...] = ()

    def marker(self, kind: str) -> Marker | None:
        """The block's marker of that kind, if any."""
        return next((m for m in self.markers if m.kind == kind), None)


@dataclass(frozen=True)
class Piece:
    """Source run by a sample, with where it comes from (for tracebacks)."""

    code: str
    file: str
    line: int


@dataclass(frozen=True)
class Sample:
    """A Python block and the blocks that continue it, run in one namespace.

    Attributes:
        readme: the README's path.
        blocks: the first block, then each `continues` block.
        prelude: the README's prelude pieces, run first.
        epilogue: the README's epilogue pieces, run last.
        name: its heading as a slug (`quick-start`; `quick-start-2` for the second
            sample under it), a test id that survives edits elsewhere in the README.
    """

    readme: Path
    blocks: tuple[Block, ...]
    prelude: tuple[Piece, ...] = ()
    epilogue: tuple[Piece, ...] = ()
    name: str = ""

    @property
    def id(self) -> str:
        """The sample's `name`, for test ids."""
        return self.name or _slug(self.blocks[0].heading)

    @property
    def where(self) -> str:
        """`README.md:12 (quick-start)`: where the sample starts, for messages."""
        return f"{self.readme.name}:{self.blocks[0].line} ({self.id})"

    @property
    def skip_reason(self) -> str | None:
        """Why the sample is not run, from its `skip` marker."""
        marker = self.blocks[0].marker("skip")
        return marker.text if marker else None

    @property
    def serves(self) -> bool:
        """Whether the sample starts a server (its last block calls `serve`/`serve_tls`)."""
        return bool(_SERVE_CALL.search(self.blocks[-1].code))

    @property
    def tls(self) -> bool:
        """Whether the server it starts speaks TLS."""
        return "serve_tls(" in self.blocks[-1].code

    @property
    def expected_error(self) -> str | None:
        """The exception the sample must end with, from a `raises` marker."""
        marker = self.blocks[-1].marker("raises")
        return marker.text if marker else None

    def pieces(self) -> list[Piece]:
        """Prelude, then each block's setup and code, in order, then the epilogue."""
        out = list(self.prelude)
        for block in self.blocks:
            setup = block.marker("setup")
            if setup is not None:
                out.append(Piece(setup.text, str(self.readme), setup.line + 1))
            out.append(Piece(block.code, str(self.readme), block.line))
        last = self.blocks[-1]
        if last.marker("raises") is None and last.marker("pytest") is None:
            out.extend(self.epilogue)
        return out


def parse_blocks(path: Path) -> list[Block]:
    """Every fenced block of a Markdown file, with its heading and markers.

    Raises:
        ReadmeError: a marker of an unknown kind, a `skip` without a reason, or a
            marker that no block follows.
    """
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    pending: list[Marker] = []
    heading = ""
    i = 0
    while i < len(lines):
        line = lines[i]
        if m := _MARKER_START.match(line):
            marker, i = _read_marker(path, lines, i, m)
            pending.append(marker)
            continue
        if m := _FENCE.match(line):
            start = i + 1
            end = start
            while end < len(lines) and lines[end].strip() != "```":
                end += 1
            code = "".join(text + "\n" for text in lines[start:end])
            blocks.append(Block(m.group(1), code, start + 1, heading, tuple(pending)))
            pending = []
            i = end + 1
            continue
        if line.strip():
            if pending:
                raise ReadmeError(f"{path}:{pending[0].line}: sample marker not followed by a code block")
            if m := _HEADING.match(line):
                heading = m.group(1)
        i += 1
    if pending:
        raise ReadmeError(f"{path}:{pending[0].line}: sample marker not followed by a code block")
    return blocks


def _read_marker(path: Path, lines: list[str], i: int, m: re.Match[str]) -> tuple[Marker, int]:
    kind, rest = m.group(1), m.group(2)
    first = i
    body = [rest]
    while "-->" not in body[-1]:
        i += 1
        if i >= len(lines):
            raise ReadmeError(f"{path}:{first + 1}: sample marker never closed (-->)")
        body.append(lines[i])
    body[-1] = body[-1][: body[-1].index("-->")]
    if kind not in MARKER_KINDS:
        raise ReadmeError(f"{path}:{first + 1}: unknown sample marker {kind!r} (known: {sorted(MARKER_KINDS)})")
    if kind in {"setup", "prelude", "epilogue"}:
        text = "".join(f"{text}\n" for text in body[1:])  # the Python lines under the kind
    else:
        text = " ".join(part.strip() for part in body).strip()
    if kind in {"skip", "raises"} and not text:
        raise ReadmeError(f"{path}:{first + 1}: '{kind}' needs {'a reason' if kind == 'skip' else 'an exception'}")
    return Marker(kind, text, first + 1), i + 1


def readme_samples(path: Path) -> list[Sample]:
    """The README's Python samples: each block with the blocks that continue it.

    A `prelude` or `epilogue` marker is not a block's marker: it applies to every sample.

    Raises:
        ReadmeError: malformed markers, or a `continues` block with nothing before it.
    """
    path = Path(path)
    blocks = parse_blocks(path)
    prelude: list[Piece] = []
    epilogue: list[Piece] = []
    samples: list[list[Block]] = []
    for block in blocks:
        for marker in block.markers:
            if marker.kind in {"prelude", "epilogue"}:
                target = prelude if marker.kind == "prelude" else epilogue
                target.append(Piece(marker.text, str(path), marker.line + 1))
        if block.lang != "python":
            continue
        if block.marker("continues"):
            if not samples:
                raise ReadmeError(f"{path}:{block.line}: 'continues' but no Python block comes before it")
            samples[-1].append(block)
        else:
            samples.append([block])
    out = []
    seen: dict[str, int] = {}
    for chain in samples:
        slug = _slug(chain[0].heading)
        seen[slug] = seen.get(slug, 0) + 1
        name = slug if seen[slug] == 1 else f"{slug}-{seen[slug]}"
        out.append(Sample(path, tuple(chain), tuple(prelude), tuple(epilogue), name))
    return out


def _slug(heading: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", heading.lower()).strip("-") or "top"


def json_block_problems(path: Path) -> list[str]:
    """`README.md:12: ...` for each ```` ```json ```` block that does not parse (one document, or one per line)."""
    problems = []
    for block in parse_blocks(Path(path)):
        if block.lang != "json":
            continue
        try:
            json.loads(block.code)
        except ValueError:
            for offset, line in enumerate(block.code.splitlines()):
                try:
                    json.loads(line)
                except ValueError as exc:
                    problems.append(f"{Path(path).name}:{block.line + offset}: {exc}")
    return problems


def dev_test_selection_problems(path: Path, root: Path) -> list[str]:
    """Each `./dev test -e ENV -- ... -k EXPR` in the text whose EXPR selects no test of ENV.

    The tests of an environment are those under the directory its tox `commands` give to
    pytest; a test's names are its file's, its class's and its function's, matched as
    pytest's `-k` does (case-insensitive substrings, `and`, `or`, `not`, parentheses).
    """
    text = Path(path).read_text(encoding="utf-8")
    problems = []
    for m in _DEV_TEST.finditer(text):
        env_name, args = m.group(1), shlex.split(m.group(2))
        expr = next((args[i + 1] for i, a in enumerate(args[:-1]) if a == "-k"), None)
        if expr is None:
            continue
        where = f"{Path(path).name}:{text.count(chr(10), 0, m.start()) + 1}"
        test_dir = _tox_test_dir(root, env_name)
        if test_dir is None:
            problems.append(f"{where}: no tox environment {env_name!r} running pytest")
            continue
        names = list(_test_names(test_dir))
        if not any(_k_matches(expr, n) for n in names):
            problems.append(f"{where}: -k {expr!r} selects none of the {len(names)} tests of {env_name}")
    return problems


def _tox_test_dir(root: Path, env_name: str) -> Path | None:
    config = configparser.ConfigParser(interpolation=None)
    config.read(root / "tox.ini")
    section = f"testenv:{env_name}"
    if not config.has_section(section):
        return None
    for command in config.get(section, "commands", fallback="").splitlines():
        words = command.split()
        if words[:1] == ["pytest"] and len(words) > 1:
            return root / words[1]
    return None


def _test_names(test_dir: Path) -> Iterator[tuple[str, ...]]:
    for path in sorted(test_dir.rglob("test_*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test"):
                yield (path.name, node.name)
            elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
                for item in node.body:
                    if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef) and item.name.startswith("test"):
                        yield (path.name, node.name, item.name)


def _k_matches(expr: str, names: tuple[str, ...]) -> bool:
    tokens: list[str] = re.findall(r"\(|\)|[^\s()]+", expr)
    lowered = [n.lower() for n in names]
    pos = 0

    def peek() -> str | None:
        return tokens[pos] if pos < len(tokens) else None

    def take() -> str:
        nonlocal pos
        pos += 1
        return tokens[pos - 1]

    def parse_or() -> bool:
        value = parse_and()
        while peek() == "or":
            take()
            value = parse_and() or value
        return value

    def parse_and() -> bool:
        value = parse_not()
        while peek() == "and":
            take()
            value = parse_not() and value
        return value

    def parse_not() -> bool:
        if peek() == "not":
            take()
            return not parse_not()
        if peek() == "(":
            take()
            value = parse_or()
            if take() != ")":
                raise ValueError(f"-k {expr!r}: unbalanced parentheses")
            return value
        word = take().lower()
        return any(word in n for n in lowered)

    return parse_or()
