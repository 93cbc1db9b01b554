"""chopin-cli's README: every `chopin ...` command line it shows is one the CLI accepts.

The README has no Python blocks (checked: a Python block added later runs as written, as in
every package, through chopin_testkit.readme); its shell block's commands are parsed by the
real click command tree, options and arguments included, without running them.
"""

from __future__ import annotations

import shlex
from pathlib import Path

import click
import pytest
from chopin_cli.cli import cli
from chopin_testkit.readme import parse_blocks, readme_samples
from chopin_testkit.samplerun import SampleEnv, run_sample

README = Path(__file__).resolve().parents[1] / "README.md"


def command_lines() -> list[tuple[int, list[str]]]:
    lines = []
    for block in parse_blocks(README):
        if block.lang != "sh":
            continue
        for offset, line in enumerate(block.code.splitlines()):
            words = shlex.split(line, comments=True)
            if words[:1] == ["chopin"]:
                lines.append((block.line + offset, words[1:]))
    return lines


COMMANDS = command_lines()


def test_the_readme_shows_commands() -> None:
    assert len(COMMANDS) >= 5


@pytest.mark.parametrize(("line", "args"), COMMANDS, ids=[" ".join(a[:2]) for _, a in COMMANDS])
def test_readme_command_is_accepted(line: int, args: list[str]) -> None:
    command: click.Command = cli
    rest = list(args)
    while isinstance(command, click.Group):
        while rest and rest[0].startswith("-"):  # the group's own flags (-v)
            rest.pop(0)
        assert rest, f"README.md:{line}: {' '.join(args)!r} names a group, not a command"
        name = rest.pop(0)
        sub = command.get_command(click.Context(command), name)
        assert sub is not None, f"README.md:{line}: no command {name!r} in {' '.join(args)!r}"
        command = sub
    with command.make_context(name, rest) as ctx:  # unknown options, missing or extra arguments raise
        assert ctx.command is command


def test_readme_python_blocks_run_as_written(tmp_path: Path) -> None:
    for sample in readme_samples(README):  # none today; one added later must run
        if not sample.skip_reason:
            run_sample(sample, SampleEnv(cwd=tmp_path))
