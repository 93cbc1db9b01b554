"""The exception hierarchy."""

from __future__ import annotations

import pickle

import kowito_json as kj


def test_hierarchy() -> None:
    for cls in (kj.ValidationError, kj.UnsupportedType, kj.EncodeError):
        assert issubclass(cls, kj.KowitoJSONError)
    assert issubclass(kj.ValidationError, ValueError)
    assert issubclass(kj.UnsupportedType, TypeError)


def test_validation_error_lines_and_pickle() -> None:
    error = kj.ValidationError([("$.a", "expected number, got string"), ("$.b", "required field missing")])
    assert str(error) == "$.a: expected number, got string\n$.b: required field missing"
    assert pickle.loads(pickle.dumps(error)).errors == error.errors
