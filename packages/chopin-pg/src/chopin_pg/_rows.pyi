# The C accelerator's interface (_rows.c); chopin_pg._row_decoder falls back to pure Python without it.
from collections.abc import Callable
from datetime import datetime
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
