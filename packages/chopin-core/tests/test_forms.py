"""urlencoded forms: the parser (no sockets), then ctx.form() over real sockets."""

from __future__ import annotations

import subprocess
from urllib.parse import parse_qsl, urlencode

import httpx
import pytest
from chopin_core import ExtractError
from chopin_core.forms import FormData, parse_urlencoded

# -- the parser (WHATWG URL 5.1) ----------------------------------------------------------


def test_parse_keeps_repeated_keys_in_order() -> None:
    form = parse_urlencoded(b"tag=a&name=J%C3%B6rg+Smith&tag=b&empty=&bare&&tag=c")
    assert form["tag"] == "a"
    assert form.getlist("tag") == ["a", "b", "c"]
    assert form["name"] == "Jörg Smith"
    assert form["empty"] == "" and form["bare"] == ""
    assert form.get("missing") is None and form.getlist("missing") == []
    assert form.to_lists() == {"tag": ["a", "b", "c"], "name": ["Jörg Smith"], "empty": [""], "bare": [""]}
    assert list(form) == ["tag", "name", "empty", "bare"] and len(form) == 4


@pytest.mark.parametrize(
    "pairs",
    [[("a", "1")], [("a b", "c&d=e"), ("a b", "%+;")], [("ü", "€ \n")], [("x", "")], []],
)
def test_parse_agrees_with_the_stdlib(pairs: list[tuple[str, str]]) -> None:
    body = urlencode(pairs).encode()
    assert parse_urlencoded(body).multi_items() == parse_qsl(body.decode(), keep_blank_values=True)


def test_parse_bounds_fields_and_sizes() -> None:
    with pytest.raises(ExtractError, match="more than 3 fields") as info:
        parse_urlencoded(b"a=1&b=2&c=3&d=4", max_fields=3)
    assert info.value.status == 413
    assert len(parse_urlencoded(b"a=1&&&b=2&c=3", max_fields=3)) == 3  # empty pairs do not count
    with pytest.raises(ExtractError, match="field 2: 11 bytes, more than the 10") as info:
        parse_urlencoded(b"a=1&b=" + b"x" * 9, max_field_size=10)
    assert info.value.status == 413


def test_parse_refuses_bytes_that_are_not_utf8() -> None:
    with pytest.raises(ExtractError, match="form field 2: not UTF-8") as info:
        parse_urlencoded(b"a=1&b=%FF")
    assert info.value.status == 400


def test_a_million_ampersands_are_cheap_and_bounded() -> None:
    assert len(parse_urlencoded(b"&" * 1_000_000)) == 0
    with pytest.raises(ExtractError):
        parse_urlencoded(b"a&" * 500_000)


def test_formdata_is_a_mapping_of_first_values() -> None:
    form = FormData([("a", "1"), ("a", "2")])
    assert dict(form) == {"a": "1"} and form.get("b", "z") == "z"


# -- over real sockets --------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(serve_module):
    return serve_module("apps.cookies_app:app")


def test_httpx_posts_a_form_with_repeated_keys(server) -> None:
    with httpx.Client(base_url=server.url, timeout=20.0) as client:
        got = client.post("/form", data={"name": "Jörg & co", "tag": ["a", "b"]})
        assert got.status_code == 200
        assert got.json() == {"name": ["Jörg & co"], "tag": ["a", "b"]}


def test_curl_data_urlencode(server) -> None:
    out = subprocess.run(
        ["curl", "-sS", "--data-urlencode", "q=a+b c", "-d", "q=2", f"{server.url}/form"],
        capture_output=True,
        text=True,
        timeout=20,
        check=True,
    )
    assert out.stdout == '{"q":["a+b c","2"]}'


def test_form_errors_answer_with_their_status(server) -> None:
    with httpx.Client(base_url=server.url, timeout=20.0) as client:
        got = client.post("/form/limited", data={"a": "1", "b": "2", "c": "3"})
        assert (got.status_code, got.text) == (413, "form: more than 2 fields")
        got = client.post("/form/limited", data={"a": "x" * 20})
        assert got.status_code == 413
        got = client.post("/form", content=b"a=%FF", headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert got.status_code == 400
        got = client.post("/form", json={"a": 1})
        assert got.status_code == 415
        got = client.post("/form", files={"f": ("f.txt", b"x")})
        assert got.status_code == 415 and "ctx.multipart()" in got.text
        # The media type is case-insensitive and its parameters are ignored.
        headers = {"Content-Type": "Application/X-WWW-Form-URLEncoded; charset=UTF-8"}
        got = client.post("/form", content=b"a=1", headers=headers)
        assert got.json() == {"a": ["1"]}
