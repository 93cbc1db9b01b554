"""chopin_testkit.readme: markers are read strictly, and a broken sample fails with its README line."""

from __future__ import annotations

from pathlib import Path

import pytest
from chopin_testkit.readme import ReadmeError, dev_test_selection_problems, json_block_problems, readme_samples
from chopin_testkit.samplerun import SampleEnv, SampleFailed, run_sample


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "README.md"
    path.write_text(text)
    return path


def test_blocks_chain_with_continues_and_get_prelude_and_setup(tmp_path: Path) -> None:
    readme = write(
        tmp_path,
        "# T\n\n<!-- sample: prelude\nbase = 1\n-->\n\n```python\nx = base + 1\n```\n\n"
        "## Next\n\n<!-- sample: continues -->\n<!-- sample: setup\ny = 10\n-->\n```python\nassert x + y == 12\n```\n\n"
        "```sh\necho not run\n```\n\n```python\nassert base == 1 and 'x' not in globals()\n```\n",
    )
    samples = readme_samples(readme)
    assert [len(s.blocks) for s in samples] == [2, 1]
    assert [s.id for s in samples] == ["t", "next"]
    assert samples[0].where == "README.md:8 (t)"
    for sample in samples:
        run_sample(sample, SampleEnv(cwd=tmp_path / "run"))


def test_epilogue_runs_after_each_sample_but_not_after_raises(tmp_path: Path) -> None:
    readme = write(
        tmp_path,
        "<!-- sample: epilogue\nassert declared == 1\n-->\n\n```python\ndeclared = 1\n```\n\n"
        "```python\ndeclared = 2\n```\n\n<!-- sample: raises KeyError -->\n```python\nraise KeyError\n```\n",
    )
    good, bad, raising = readme_samples(readme)
    run_sample(good, SampleEnv(cwd=tmp_path / "run"))
    with pytest.raises(SampleFailed, match="AssertionError"):
        run_sample(bad, SampleEnv(cwd=tmp_path / "run"))
    run_sample(raising, SampleEnv(cwd=tmp_path / "run"))


def test_a_failing_sample_reports_its_readme_line(tmp_path: Path) -> None:
    readme = write(tmp_path, "# T\n\n```python\nx = 1\nraise KeyError('boom')\n```\n")
    (sample,) = readme_samples(readme)
    with pytest.raises(SampleFailed) as caught:
        run_sample(sample, SampleEnv(cwd=tmp_path / "run"))
    assert f'File "{readme}", line 5' in str(caught.value)
    assert "KeyError: 'boom'" in str(caught.value)


def test_raises_marker_wants_that_exception(tmp_path: Path) -> None:
    readme = write(
        tmp_path,
        "<!-- sample: raises json.JSONDecodeError -->\n```python\nimport json\njson.loads('{')\n```\n\n"
        "<!-- sample: raises KeyError -->\n```python\nx = 1\n```\n\n"
        "<!-- sample: raises KeyError -->\n```python\nraise ValueError\n```\n",
    )
    good, ran_through, wrong = readme_samples(readme)
    run_sample(good, SampleEnv(cwd=tmp_path / "run"))
    with pytest.raises(SampleFailed, match="should raise KeyError, but ran to the end"):
        run_sample(ran_through, SampleEnv(cwd=tmp_path / "run"))
    with pytest.raises(SampleFailed, match=r"should raise KeyError, raised builtins\.ValueError"):
        run_sample(wrong, SampleEnv(cwd=tmp_path / "run"))


@pytest.mark.parametrize(
    "text",
    [
        "<!-- sample: skip -->\n```python\n```\n",
        "<!-- sample: sometimes -->\n```python\n```\n",
        "<!-- sample: continues -->\n```python\n```\n",
        "<!-- sample: skip a reason -->\n\nsome prose\n\n```python\n```\n",
        "<!-- sample: setup\nx = 1\n",
    ],
    ids=["skip-without-reason", "unknown-kind", "continues-nothing", "marker-then-prose", "never-closed"],
)
def test_malformed_markers_are_refused(tmp_path: Path, text: str) -> None:
    with pytest.raises(ReadmeError):
        readme_samples(write(tmp_path, text))


def test_a_serving_sample_is_started_probed_and_stopped(tmp_path: Path) -> None:
    server = (
        "import http.server, signal, sys\n"
        "class H(http.server.BaseHTTPRequestHandler):\n"
        "    def do_GET(self):\n"
        "        self.send_response(200); self.send_header('Content-Length', '2'); self.end_headers()\n"
        "        self.wfile.write(b'ok')\n"
        "class S:\n"
        "    def serve(self, addr):\n"
        "        host, port = addr.rsplit(':', 1)\n"
        "        httpd = http.server.HTTPServer((host, int(port)), H)\n"
        "        signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))\n"
        "        httpd.serve_forever()\n"
        'S().serve("0.0.0.0:8080")\n'
    )
    (sample,) = readme_samples(write(tmp_path, f"```python\n{server}```\n"))
    assert sample.serves
    served = run_sample(sample, SampleEnv(cwd=tmp_path / "run"))
    assert served is not None
    assert (served.status, served.body) == (200, b"ok")


def test_postgres_urls_and_replacements_are_substituted(tmp_path: Path) -> None:
    from chopin_testkit import LocalPg

    readme = write(
        tmp_path,
        '```python\nimport os\nassert "postgres://app@db/app" == "postgres://u@h:1/scratch?sslmode=disable"\n'
        'assert os.environ["PGDATABASE"] == "scratch"\nassert "http://x:9" == "http://y:8"\n```\n',
    )
    (sample,) = readme_samples(readme)
    db = LocalPg(host="h", port=1, user="u", database="scratch")
    run_sample(sample, SampleEnv(cwd=tmp_path / "run", database=db, replace={"http://x:9": "http://y:8"}))


def test_dev_test_selection_must_select_a_test(tmp_path: Path) -> None:
    (tmp_path / "tox.ini").write_text("[testenv:pkg]\ncommands = pytest t {posargs}\n")
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "test_worker.py").write_text(
        "def test_pipelined_burst():\n    pass\nclass TestGzip:\n    def test_stream(self):\n        pass\n"
    )
    readme = write(
        tmp_path,
        "`./dev test -e pkg -- -k pipelined` and `./dev test -e pkg -- -k 'gzip and not burst'`\n"
        "`./dev test -e pkg -- -k pipelining`; `./dev test -e nope -- -k x`\n",
    )
    assert dev_test_selection_problems(readme, tmp_path) == [
        "README.md:2: -k 'pipelining' selects none of the 2 tests of pkg",
        "README.md:2: no tox environment 'nope' running pytest",
    ]


def test_json_blocks_must_parse(tmp_path: Path) -> None:
    readme = write(tmp_path, '```json\n{"a": 1}\n```\n\n```json\n{"a": 1}\n{"b":\n```\n')
    assert json_block_problems(readme) == ["README.md:7: Expecting value: line 1 column 6 (char 5)"]
