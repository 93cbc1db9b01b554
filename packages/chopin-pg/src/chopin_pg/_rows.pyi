# The C accelerator's interface (_rows.c, _rows_copy.c); chopin_pg._row_decoder and chopin_pg._copy_binary
# fall back to pure Python without it.
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, tzinfo
from typing import Any

def configure(
    row_type: type,
    values_slot: object,
    names_slot: object,
    decimal: type,
    uuid: type,
    unknown: object,
    loads: Callable[[bytes], Any] | None,
    epoch: datetime,
    min_us: int,
    max_us: int,
    /,
) -> None: ...
def decode_rows(
    kinds: bytes,
    decoders: tuple[Callable[[bytes], Any], ...],
    epochs: tuple[Callable[[], datetime | None] | None, ...],
    names: dict[str, int],
    data: bytes,
    pos: int,
    limit: int,
    out: list[Any],
    max_size: int,
    /,
) -> int: ...
def configure_copy(uuid: type, int_slot: object, /) -> None: ...
def encode_rows(
    kinds: bytes,
    encoders: tuple[Callable[[Any], bytes], ...],
    accepts: tuple[tuple[type, ...] | None, ...],
    zones: tuple[tzinfo | None, ...],
    fallback: Callable[[Iterable[Sequence[Any]], bytearray, Callable[[], None], int], None],
    rows: Iterable[Sequence[Any]],
    buffer: bytearray,
    flush: Callable[[], None],
    limit: int,
    /,
) -> None: ...
