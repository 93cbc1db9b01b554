"""Where kowito-json's time goes on benchmarks/json.py's plain-dataclass shapes (issue 24).

    benchmarks/.venv-json/bin/python -P benchmarks/json_profile.py [--repeats 7] [--cprofile]

Run after benchmarks/json.py has created its venv.  Microseconds per call, the minimum
over --repeats rounds of timeit batches timed with time.thread_time (timeit turns the
garbage collector off, as in benchmarks/json.py; the "GC on" rows turn it back on).

Decode, the 1 000 events and the 1 000 orders: kowito-json, pydantic v2 and
``orjson.loads`` alone; then floors, each paid by any pure-Python decoder that returns
the same objects: the dataclasses built from values that already exist (one ``__init__``
call each, no parsing, no checks), and the leaf values parsed from the parsed dicts
(``parse_uuid``, ``datetime.fromisoformat``, ``Decimal``) with no checks or objects.

Encode, the small object, the message and the 1 000 events and orders: orjson's native
call as the benchmark times it, kowito-json's ``encode``, and the floor of any Python
``encode()`` that hands the object to orjson: a Python function that only calls
``orjson.dumps`` (nothing looked at).
"""

from __future__ import annotations

import argparse
import cProfile
import decimal
import gc
import importlib.util
import io
import pstats
import sys
import time
import timeit
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import kowito_json
import orjson
import pydantic
from kowito_json import _parsers  # the parsers the generated decoders call

HERE = Path(__file__).resolve().parent


def load_bench() -> Any:
    sys.path.insert(0, str(HERE))  # json.py moves its folder to the end of sys.path (and finds benchlib)
    spec = importlib.util.spec_from_file_location("json_bench", HERE / "json.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def per_call(stmt: Any, repeats: int, gc_on: bool = False) -> float:
    timer = timeit.Timer(stmt, setup="import gc; gc.enable()" if gc_on else "pass", timer=time.thread_time)
    number, elapsed = timer.autorange()
    number = max(1, int(number * 0.02 / elapsed))
    return min(timer.timeit(number) / number for _ in range(repeats)) * 1e6


def show(label: str, us: float, base: float | None = None) -> None:
    extra = f"  ({us / base:.2f}x)" if base else ""
    print(f"  {label:<70} {us:10.2f} us{extra}")


def calls_per(fn: Any, items: int) -> str:
    prof = cProfile.Profile(builtins=True)
    prof.enable()
    fn()
    prof.disable()
    stats = pstats.Stats(prof)
    entries = stats.stats  # type: ignore[attr-defined]
    total = sum(v[1] for v in entries.values())
    python = sum(v[1] for k, v in entries.items() if not k[0].startswith("~"))
    stream = io.StringIO()
    pstats.Stats(prof, stream=stream).sort_stats("tottime").print_stats(8)
    top = "\n".join("      " + line for line in stream.getvalue().splitlines()[7:17] if line.strip())
    return f"{total / items:.1f} calls per item, {python / items:.1f} of them Python functions\n{top}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--cprofile", action="store_true")
    args = parser.parse_args()
    bench = load_bench()
    types = bench.make_types(False)
    cases = bench.make_cases(types)

    for name in ("events", "orders"):
        decode_case(bench, types, cases, name, args)
    for name in ("small", "message", "events", "orders"):
        encode_case(bench, cases, name, args)
    gc.collect()
    sys.stdout.flush()


def decode_case(bench: Any, types: dict[str, Any], cases: dict[str, Any], name: str, args: argparse.Namespace) -> None:
    """The decode figures of one shape."""
    r = args.repeats
    tp, value = cases[name]
    data = kowito_json.encode(value)
    parsed = orjson.loads(data)
    decode = kowito_json.decode
    adapter = pydantic.TypeAdapter(tp)
    print(f"decode: {bench.LABELS[name]} (plain dataclasses)")
    pyd = per_call(lambda: adapter.validate_json(data), r)
    show("pydantic v2 validate_json", pyd)
    show("pydantic v2 validate_json, GC on", per_call(lambda: adapter.validate_json(data), r, gc_on=True))
    show("kowito-json decode(data, type=T)", per_call(lambda: decode(data, type=tp), r), pyd)
    show("kowito-json decode, GC on", per_call(lambda: decode(data, type=tp), r, gc_on=True))
    show("orjson.loads alone", per_call(lambda: orjson.loads(data), r), pyd)
    show("target: 0.8x pydantic", 0.8 * pyd)
    if name == "events":
        event, address = types["Event"], types["Address"]
        ready = [(e.id, e.uid, e.at, e.name, e.address.street, e.address.city, e.address.zip, e.tags) for e in value]
        floor_build = per_call(lambda: [event(i, u, a, n, address(s, c, z), t) for i, u, a, n, s, c, z, t in ready], r)
        show("floor: the 2 000 dataclasses built from existing values (2 __init__)", floor_build, pyd)
        parse_uuid, fromiso = _parsers.parse_uuid, datetime.fromisoformat
        floor_leaves = per_call(lambda: [(parse_uuid(d["uid"]), fromiso(d["at"])) for d in parsed], r)
        show("floor: the leaves parsed (parse_uuid, fromisoformat), no checks", floor_leaves, pyd)
        show(
            "  of which uuid.UUID(str) instead of parse_uuid",
            per_call(lambda: [uuid.UUID(d["uid"]) for d in parsed], r),
        )
    else:
        order, line = types["Order"], types["Line"]
        status = bench.Status
        ready_o = [
            (o.id, o.customer, o.placed, o.status, o.total, o.note, [(ln.sku, ln.qty, ln.price) for ln in o.lines])
            for o in value
        ]
        floor_build = per_call(
            lambda: [
                order(i, c, p, s, t, n, [line(a, b, d) for a, b, d in lines]) for i, c, p, s, t, n, lines in ready_o
            ],
            r,
        )
        show("floor: the 3 000 dataclasses built from existing values (3 __init__)", floor_build, pyd)
        parse_uuid, fromiso, dec = _parsers.parse_uuid, datetime.fromisoformat, decimal.Decimal
        floor_leaves = per_call(
            lambda: [
                (
                    parse_uuid(d["customer"]),
                    fromiso(d["placed"]),
                    status(d["status"]),
                    dec(d["total"]),
                    [dec(ln["price"]) for ln in d["lines"]],
                )
                for d in parsed
            ],
            r,
        )
        show("floor: the leaves parsed (uuid, datetime, enum, 3 Decimal), no checks", floor_leaves, pyd)
    loads_t = per_call(lambda: orjson.loads(data), r)
    show("floor total: loads + dataclasses + leaves", loads_t + floor_build + floor_leaves, pyd)
    if args.cprofile:
        print("    cProfile of decode: " + calls_per(lambda: decode(data, type=tp), len(value)))
    print()


def encode_case(bench: Any, cases: dict[str, Any], name: str, args: argparse.Namespace) -> None:
    """The encode figures of one shape."""
    r = args.repeats
    _, value = cases[name]
    print(f"encode: {bench.LABELS[name]} (plain dataclasses)")
    dumps = orjson.dumps
    native = per_call(lambda: dumps(value, default=str), r)
    show("orjson.dumps(value, default=str)", native)
    show("kowito-json encode(value)", per_call(lambda: kowito_json.encode(value), r), native)

    def wrapper(v: Any) -> bytes:
        return dumps(v, default=str)

    show("floor: a Python function that only calls orjson.dumps", per_call(lambda: wrapper(value), r), native)
    if name == "orders":

        def py_default(v: Any) -> Any:
            return str(v)

        show(
            "orjson.dumps with a Python default= (one Python call per Decimal)",
            per_call(lambda: dumps(value, default=py_default), r),
            native,
        )
    if args.cprofile and name in ("events", "orders"):
        print("    cProfile of encode: " + calls_per(lambda: kowito_json.encode(value), len(value)))
    print()


if __name__ == "__main__":
    main()
