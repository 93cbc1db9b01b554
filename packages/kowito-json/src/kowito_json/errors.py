"""The exception hierarchy of kowito-json.

Every error the package raises derives from :class:`KowitoJSONError`.  Decoding
problems are collected, not raised one at a time: a :class:`ValidationError`
carries every problem found, each with the JSON path where it was found.
"""

from __future__ import annotations

__all__ = [
    "EncodeError",
    "KowitoJSONError",
    "UnsupportedType",
    "ValidationError",
]


class KowitoJSONError(Exception):
    """Root of every exception raised by kowito-json."""


class UnsupportedType(KowitoJSONError, TypeError):
    """A type (or an option on it) cannot be encoded, decoded or described.

    Raised when an :class:`~kowito_json.Encoder`, :class:`~kowito_json.Decoder` or
    schema is built, never while data flows.
    """


class EncodeError(KowitoJSONError, TypeError):
    """A value could not be encoded (it does not match its declared type)."""


class ValidationError(KowitoJSONError, ValueError):
    """The input does not match the target type.

    ``str(error)`` is one problem per line, each as ``path: message``, for
    instance ``$.items[3].price: expected number, got string``.

    Attributes:
        errors: every problem found, as ``(path, message)`` pairs in input order.
    """

    def __init__(self, errors: list[tuple[str, str]]) -> None:
        self.errors = errors
        super().__init__("\n".join(f"{path}: {message}" for path, message in errors))

    def __reduce__(self) -> tuple[type[ValidationError], tuple[list[tuple[str, str]]]]:
        return (type(self), (self.errors,))
