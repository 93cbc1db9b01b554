"""``application/x-www-form-urlencoded`` bodies: a bounded parser and the multidict it returns.

The format is the WHATWG URL Standard's (5.1): ``&``-separated ``name=value`` pairs, ``+``
for a space, percent-encoded UTF-8.  Every bound is a named limit with a safe default;
passing one turns into an :class:`~chopin_core.ExtractError` carrying the status to answer.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Final
from urllib.parse import unquote_to_bytes

from .errors import ExtractError

__all__ = ["MAX_FORM_FIELDS", "MAX_FORM_FIELD_SIZE", "FormData", "parse_urlencoded"]

MAX_FORM_FIELDS: Final = 1000
"""Fields one form may hold (413 past it): each costs a tuple and two strings."""

MAX_FORM_FIELD_SIZE: Final = 64 * 1024
"""Bytes of one encoded ``name=value`` pair (413 past it); bigger values belong in multipart."""

URLENCODED: Final = "application/x-www-form-urlencoded"


class FormData(Mapping[str, str]):
    """A form's fields in the order sent; a name may repeat.

    As a mapping, ``form[name]`` and ``form.get(name)`` give the *first* value of a name;
    :meth:`getlist` gives them all, and :meth:`multi_items` every pair in order.
    """

    __slots__ = ("_first", "_items")

    def __init__(self, items: list[tuple[str, str]]) -> None:
        self._items = items
        first: dict[str, str] = {}
        for name, value in items:
            first.setdefault(name, value)
        self._first = first

    def __getitem__(self, name: str) -> str:
        return self._first[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._first)

    def __len__(self) -> int:
        return len(self._first)

    def getlist(self, name: str) -> list[str]:
        """Every value sent for ``name``, in order (empty when it was not sent)."""
        return [value for key, value in self._items if key == name]

    def multi_items(self) -> list[tuple[str, str]]:
        """Every ``(name, value)`` pair, repeats included, in the order sent."""
        return list(self._items)

    def to_lists(self) -> dict[str, list[str]]:
        """The form as a dict of lists (what :func:`urllib.parse.parse_qs` returns)."""
        out: dict[str, list[str]] = {}
        for name, value in self._items:
            out.setdefault(name, []).append(value)
        return out

    def __repr__(self) -> str:
        return f"FormData({self._items!r})"


def _decode(raw: bytes, where: str) -> str:
    # WHATWG URL 5.1 (urlencoded parser): '+' is a space, then percent-decode, then UTF-8.
    try:
        return unquote_to_bytes(raw.replace(b"+", b" ")).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ExtractError(f"form field {where}: not UTF-8 after percent-decoding ({exc.reason})", 400) from None


def parse_urlencoded(
    body: bytes, *, max_fields: int = MAX_FORM_FIELDS, max_field_size: int = MAX_FORM_FIELD_SIZE
) -> FormData:
    """Parse an ``application/x-www-form-urlencoded`` body (WHATWG URL 5.1).

    Empty pairs (``a=1&&b=2``) are skipped; a pair without ``=`` is a name with an
    empty value, as browsers and ``parse_qsl(keep_blank_values=True)`` read it.

    Args:
        body: the request body.
        max_fields: fields allowed (413 past it).
        max_field_size: bytes of one encoded ``name=value`` pair (413 past it).

    Raises:
        ExtractError: 413 past a bound, 400 for bytes that are not UTF-8.
    """
    items: list[tuple[str, str]] = []
    pos, end, number = 0, len(body), 0
    # Walk the pairs one by one rather than split(): a body of a million '&' must not
    # allocate a million pieces before the field bound is checked.
    while pos < end:
        amp = body.find(b"&", pos)
        if amp < 0:
            amp = end
        pair = body[pos:amp]
        pos = amp + 1
        number += 1
        if not pair:
            continue
        if len(items) >= max_fields:
            raise ExtractError(f"form: more than {max_fields} fields", 413)
        if len(pair) > max_field_size:
            raise ExtractError(f"form field {number}: {len(pair)} bytes, more than the {max_field_size} allowed", 413)
        name, _, value = pair.partition(b"=")
        items.append((_decode(name, str(number)), _decode(value, str(number))))
    return FormData(items)
