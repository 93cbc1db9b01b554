"""JSONTestSuite's 318 parsing cases against kowito-json's decoder.

``y_`` cases must decode (to what the standard library reads), ``n_`` cases must
raise :class:`~kowito_json.ValidationError`, and ``i_`` cases (left to the parser by
RFC 8259) must do what :data:`IMPLEMENTATION_DEFINED` and the README's table say.
The cases live in ``jsontestsuite/test_parsing/`` (see its LICENSE); the 25 whose
invalid UTF-8 the npm package mangled are written here byte for byte.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import kowito_json as kj
import pytest

CASES_DIR = Path(__file__).parent / "jsontestsuite" / "test_parsing"
README = Path(__file__).resolve().parents[1] / "README.md"

# The cases the npm package carries as U+FFFD: JSONTestSuite's original bytes.
INVALID_UTF8_CASES: dict[str, bytes] = {
    "i_string_UTF-16LE_with_BOM.json": b'\xff\xfe[\x00"\x00\xe9\x00"\x00]\x00',
    "i_string_UTF-8_invalid_sequence.json": b'["\xe6\x97\xa5\xd1\x88\xfa"]',
    "i_string_UTF8_surrogate_U+D800.json": b'["\xed\xa0\x80"]',
    "i_string_invalid_utf-8.json": b'["\xff"]',
    "i_string_iso_latin_1.json": b'["\xe9"]',
    "i_string_lone_utf8_continuation_byte.json": b'["\x81"]',
    "i_string_not_in_unicode_range.json": b'["\xf4\xbf\xbf\xbf"]',
    "i_string_overlong_sequence_2_bytes.json": b'["\xc0\xaf"]',
    "i_string_overlong_sequence_6_bytes.json": b'["\xfc\x83\xbf\xbf\xbf\xbf"]',
    "i_string_overlong_sequence_6_bytes_null.json": b'["\xfc\x80\x80\x80\x80\x80"]',
    "i_string_truncated-utf-8.json": b'["\xe0\xff"]',
    "i_string_utf16BE_no_BOM.json": b'\x00[\x00"\x00\xe9\x00"\x00]',
    "i_string_utf16LE_no_BOM.json": b'[\x00"\x00\xe9\x00"\x00]\x00',
    "n_array_a_invalid_utf8.json": b"[a\xe5]",
    "n_array_invalid_utf8.json": b"[\xff]",
    "n_number_invalid-utf-8-in-bigger-int.json": b"[123\xe5]",
    "n_number_invalid-utf-8-in-exponent.json": b"[1e1\xe5]",
    "n_number_invalid-utf-8-in-int.json": b"[0\xe5]\n",
    "n_number_real_with_invalid_utf8_after_e.json": b"[1e\xe5]",
    "n_object_lone_continuation_byte_in_key_and_trailing_comma.json": b'{"\xb9":"0",}',
    "n_string_invalid-utf-8-in-escape.json": b'["\\u\xe5"]',
    "n_string_invalid_utf8_after_escape.json": b'["\\\xe5"]',
    "n_structure_incomplete_UTF8_BOM.json": b"\xef\xbb{}",
    "n_structure_lone-invalid-utf-8.json": b"\xe5",
    "n_structure_single_eacute.json": b"\xe9",
}

# What kowito-json does with each i_ case (also the README's table).  orjson refuses
# numbers that overflow a double, lone surrogates, invalid UTF-8, UTF-16 and a BOM.
IMPLEMENTATION_DEFINED: dict[str, str] = {
    "i_number_double_huge_neg_exp.json": "accepted (0.0)",
    "i_number_huge_exp.json": "refused",
    "i_number_neg_int_huge_exp.json": "refused",
    "i_number_pos_double_huge_exp.json": "refused",
    "i_number_real_neg_overflow.json": "refused",
    "i_number_real_pos_overflow.json": "refused",
    "i_number_real_underflow.json": "accepted (0.0)",
    "i_number_too_big_neg_int.json": "accepted (exact int)",
    "i_number_too_big_pos_int.json": "accepted (exact int)",
    "i_number_very_big_negative_int.json": "accepted (exact int)",
    "i_object_key_lone_2nd_surrogate.json": "refused",
    "i_string_1st_surrogate_but_2nd_missing.json": "refused",
    "i_string_1st_valid_surrogate_2nd_invalid.json": "refused",
    "i_string_UTF-16LE_with_BOM.json": "refused",
    "i_string_UTF-8_invalid_sequence.json": "refused",
    "i_string_UTF8_surrogate_U+D800.json": "refused",
    "i_string_incomplete_surrogate_and_escape_valid.json": "refused",
    "i_string_incomplete_surrogate_pair.json": "refused",
    "i_string_incomplete_surrogates_escape_valid.json": "refused",
    "i_string_invalid_lonely_surrogate.json": "refused",
    "i_string_invalid_surrogate.json": "refused",
    "i_string_invalid_utf-8.json": "refused",
    "i_string_inverted_surrogates_U+1D11E.json": "refused",
    "i_string_iso_latin_1.json": "refused",
    "i_string_lone_second_surrogate.json": "refused",
    "i_string_lone_utf8_continuation_byte.json": "refused",
    "i_string_not_in_unicode_range.json": "refused",
    "i_string_overlong_sequence_2_bytes.json": "refused",
    "i_string_overlong_sequence_6_bytes.json": "refused",
    "i_string_overlong_sequence_6_bytes_null.json": "refused",
    "i_string_truncated-utf-8.json": "refused",
    "i_string_utf16BE_no_BOM.json": "refused",
    "i_string_utf16LE_no_BOM.json": "refused",
    "i_structure_500_nested_arrays.json": "accepted",
    "i_structure_UTF-8_BOM_empty_object.json": "refused",
}


@dataclasses.dataclass
class Holder:
    value: Any


def _load_cases() -> dict[str, bytes]:
    cases = {path.name: path.read_bytes() for path in CASES_DIR.iterdir() if path.suffix == ".json"}
    assert not cases.keys() & INVALID_UTF8_CASES.keys()
    cases.update(INVALID_UTF8_CASES)
    return dict(sorted(cases.items()))


CASES = _load_cases()


def _named(prefix: str) -> list[str]:
    return [name for name in CASES if name.startswith(prefix)]


def _outcome(data: bytes) -> str:
    try:
        value = kj.decode(data, type=Any)
    except kj.ValidationError:
        return "refused"
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], (int, float)):
        # The number cases: say what the number became.
        return "accepted (exact int)" if type(value[0]) is int else f"accepted ({value[0]!r})"
    return "accepted"


def test_the_whole_suite_is_here() -> None:
    assert len(CASES) == 318
    assert (len(_named("y_")), len(_named("n_")), len(_named("i_"))) == (95, 188, 35)
    assert set(_named("i_")) == IMPLEMENTATION_DEFINED.keys()


@pytest.mark.parametrize("name", _named("y_"))
def test_y_case_is_accepted(name: str) -> None:
    data = CASES[name]
    assert kj.decode(data, type=Any) == json.loads(data)


@pytest.mark.parametrize("name", _named("n_"))
def test_n_case_is_refused_with_validation_error(name: str) -> None:
    with pytest.raises(kj.ValidationError) as info:
        kj.decode(CASES[name], type=Any)
    assert info.value.errors[0][0] == "$"


@pytest.mark.parametrize("name", _named("i_"))
def test_i_case_does_what_the_table_says(name: str) -> None:
    assert _outcome(CASES[name]) == IMPLEMENTATION_DEFINED[name]


def test_integers_past_64_bits_stay_exact_through_any() -> None:
    # orjson alone gives 1e+20 here; a typed int always fell back to the standard
    # library, Any (alone, in containers or in a dataclass field) did not.
    big = 100000000000000000000
    assert kj.decode(CASES["i_number_too_big_pos_int.json"], type=Any) == [big]
    assert type(kj.decode(b"[100000000000000000000]", type=list[Any])[0]) is int
    assert kj.decode('{"a": [-9223372036854775809, 1e20]}', type=dict[str, Any]) == {"a": [-9223372036854775809, 1e20]}
    assert kj.decode(b'{"value": 18446744073709551616}', type=Holder) == Holder(18446744073709551616)


def test_readme_table_matches_the_implementation_defined_cases() -> None:
    rows = dict(re.findall(r"^\| `(i_[^`]+)` \| ([^|]+?) \|$", README.read_text(), flags=re.MULTILINE))
    assert rows == IMPLEMENTATION_DEFINED
