#!/usr/bin/env python3
"""JSON benchmark: kowito-json's documented calls against orjson, msgspec, pydantic v2 and mashumaro.

    python3 benchmarks/json.py [--repeats 15] [--only small,message,events,orders] [--layout plain,slots]
                               [--markdown-out benchmarks/RESULTS.md]

Measures, in one process and one run, the calls users write:

* kowito-json: ``kowito_json.encode(obj)`` and ``kowito_json.decode(data, type=T)``
  (plus a cached ``decoder_for(T).decode`` to show what the shortcut costs);
* orjson: ``orjson.dumps(obj)``, its native dataclass path (no ``OPT_PASSTHROUGH_DATACLASS``);
* msgspec: ``msgspec.json.encode(obj)`` and a cached ``msgspec.json.Decoder(T).decode``;
* pydantic v2: ``TypeAdapter(T).dump_json`` / ``TypeAdapter(T).validate_json`` on the same dataclass;
* mashumaro: its orjson codecs for the same dataclass.

Every library works on the same dataclasses (plain, and the same again with
``slots=True``), on four shapes: a small object (5 fields), the TechEmpower
message, a top-level list of 1 000 nested objects each with an aware datetime, a
UUID, a nested dataclass and a list, and a list of 1 000 orders with Decimals, an
enum, an optional and nested line items.  Before timing, each library's output
must decode (with kowito-json) to the original value, and each decoder must
return a value equal to it.

Each cell is the minimum over ``--repeats`` rounds; a round times every library
once, in turn (interleaved, so load from other processes hits all of them
alike), each with a ``timeit`` batch of about 0.02 s of this thread's CPU time
(``time.thread_time``: time spent descheduled while other processes run does not
count, which wall-clock timing on a shared 2-core machine cannot avoid).  The script runs under any
python3: it creates benchmarks/.venv-json from benchmarks/requirements-json.txt
(plus kowito-json from this checkout) on first use and re-runs itself there.
"""

import sys

# This file is named json.py: move its folder to the end of sys.path so ``import json``
# (ours and every library's) finds the standard library, and ``import benchlib`` still
# finds benchmarks/benchlib.py.
if sys.path and sys.path[0] and __import__("os").path.samefile(sys.path[0], __import__("os").path.dirname(__file__)):
    sys.path.append(sys.path.pop(0))

import argparse
import dataclasses
import datetime as dt
import decimal
import enum
import os
import platform
import subprocess
import time
import timeit
import uuid
from pathlib import Path
from typing import Any

import benchlib
from benchlib import HERE, REPO, log, markdown_table, write_section

VENV = HERE / ".venv-json"
VENV_PY = VENV / "bin" / "python"
REQUIREMENTS = HERE / "requirements-json.txt"
KOWITO = REPO / "packages" / "kowito-json"
BATCH_S = 0.02


def ensure_venv() -> None:
    """Create the benchmark venv if missing and re-run this script inside it."""
    if Path(sys.prefix).resolve() == VENV.resolve():
        return
    if not VENV_PY.exists():
        benchlib.create_venv(VENV, str(VENV))
        pip = [str(VENV_PY), "-m", "pip", "install", "-q"]
        subprocess.run([*pip, "-r", str(REQUIREMENTS), "-e", str(KOWITO)], check=True)
    os.execv(str(VENV_PY), [str(VENV_PY), __file__, *sys.argv[1:]])


# -- payloads ---------------------------------------------------------------------


class Status(enum.Enum):
    NEW = "new"
    PAID = "paid"
    SHIPPED = "shipped"


def make_types(slots: bool) -> dict[str, Any]:
    """The payload dataclasses, plain or with ``slots=True``."""

    @dataclasses.dataclass(slots=slots)
    class Small:
        id: int
        name: str
        email: str
        active: bool
        score: float

    @dataclasses.dataclass(slots=slots)
    class Message:
        message: str

    @dataclasses.dataclass(slots=slots)
    class Address:
        street: str
        city: str
        zip: str

    @dataclasses.dataclass(slots=slots)
    class Event:
        id: int
        uid: uuid.UUID
        at: dt.datetime
        name: str
        address: Address
        tags: list[str]

    @dataclasses.dataclass(slots=slots)
    class Line:
        sku: str
        qty: int
        price: decimal.Decimal

    @dataclasses.dataclass(slots=slots)
    class Order:
        id: int
        customer: uuid.UUID
        placed: dt.datetime
        status: Status
        total: decimal.Decimal
        note: str | None
        lines: list[Line]

    # Annotations here are objects (no `from __future__ import annotations`): nothing to resolve.
    types = {"Small": Small, "Message": Message, "Address": Address, "Event": Event, "Line": Line, "Order": Order}
    if slots:
        for name, cls in types.items():
            cls.__qualname__ = cls.__name__ = name + "Slots"
    return types


def make_cases(types: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """shape -> (annotation, value)."""
    base = dt.datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=dt.UTC)
    address, event, line, order = types["Address"], types["Event"], types["Line"], types["Order"]
    events = [
        event(
            id=i,
            uid=uuid.UUID(int=i * 7919 + 1),
            at=base + dt.timedelta(seconds=i),
            name=f"event {i}",
            address=address(street=f"{i} Main St", city="Springfield", zip=f"{10000 + i}"),
            tags=["a", "b"],
        )
        for i in range(1000)
    ]
    statuses = list(Status)
    orders = [
        order(
            id=i,
            customer=uuid.UUID(int=i * 104729 + 7),
            placed=base + dt.timedelta(minutes=i),
            status=statuses[i % 3],
            total=decimal.Decimal(f"{i * 3}.97"),
            note=None if i % 4 else "leave at the door",
            lines=[line(sku=f"SKU-{i}-{j}", qty=j + 1, price=decimal.Decimal(f"{j}.99")) for j in range(2)],
        )
        for i in range(1000)
    ]
    return {
        "small": (types["Small"], types["Small"](42, "Ann Example", "ann@example.com", True, 97.5)),
        "message": (types["Message"], types["Message"]("Hello, World!")),
        "events": (list[event], events),
        "orders": (list[order], orders),
    }


LABELS = {
    "small": "small object (5 fields)",
    "message": "TechEmpower message",
    "events": "1 000 events (datetime, UUID, nested, list)",
    "orders": "1 000 orders (Decimal, enum, optional, nested lines)",
}


# -- libraries --------------------------------------------------------------------

# A timeit statement (the documented call) and the namespace it runs in.
Call = tuple[str, dict[str, Any]]


def calls(tp: Any, value: Any, data: bytes) -> dict[tuple[str, str], Call]:
    """Every (library, op) call for one case, as a ``timeit`` statement and its namespace."""
    import kowito_json
    import mashumaro.codecs.orjson as mcodecs
    import msgspec
    import orjson
    import pydantic

    ns = {"value": value, "data": data, "T": tp}
    adapter = pydantic.TypeAdapter(tp)
    out: dict[tuple[str, str], Call] = {
        ("kowito-json", "encode"): ("encode(value)", {**ns, "encode": kowito_json.encode}),
        ("kowito-json", "decode"): ("decode(data, type=T)", {**ns, "decode": kowito_json.decode}),
        ("kowito Decoder", "decode"): ("decode(data)", {**ns, "decode": kowito_json.decoder_for(tp).decode}),
        # orjson's native dataclass path; Decimal is the one type it needs a default= for.
        ("orjson", "encode"): ("dumps(value, default=str)", {**ns, "dumps": orjson.dumps}),
        ("msgspec", "encode"): ("encode(value)", {**ns, "encode": msgspec.json.encode}),
        ("msgspec", "decode"): ("decode(data)", {**ns, "decode": msgspec.json.Decoder(tp).decode}),
        ("pydantic v2", "encode"): ("encode(value)", {**ns, "encode": adapter.dump_json}),
        ("pydantic v2", "decode"): ("decode(data)", {**ns, "decode": adapter.validate_json}),
        ("mashumaro", "encode"): ("encode(value)", {**ns, "encode": mcodecs.ORJSONEncoder(tp).encode}),
        ("mashumaro", "decode"): ("decode(data)", {**ns, "decode": mcodecs.ORJSONDecoder(tp).decode}),
        # Not a decoder: the parse alone, the floor under kowito-json (orjson.loads + generated Python).
        (PARSE_ONLY, "decode"): ("loads(data)", {**ns, "loads": orjson.loads}),
    }
    return out


PARSE_ONLY = "orjson.loads alone"
COLUMNS = {
    "encode": ["kowito-json", "orjson", "msgspec", "pydantic v2", "mashumaro"],
    "decode": ["kowito-json", "kowito Decoder", "msgspec", "pydantic v2", "mashumaro", PARSE_ONLY],
}


def check(tp: Any, value: Any, cells: dict[tuple[str, str], Call]) -> None:
    """Every encoder's output must decode to ``value``; every decoder must rebuild ``value``."""
    import kowito_json

    for (lib, op), (stmt, ns) in cells.items():
        result = eval(stmt, dict(ns))
        if op == "encode":
            assert kowito_json.decode(result, type=tp) == value, (lib, "encode")
        elif lib != PARSE_ONLY:
            assert result == value, (lib, "decode")


# -- timing -----------------------------------------------------------------------


def timers(cells: dict[tuple[str, str], Call]) -> dict[tuple[str, str], tuple[timeit.Timer, int]]:
    """A ``timeit.Timer`` per cell and the number of calls that takes about BATCH_S."""
    out = {}
    for key, (stmt, ns) in cells.items():
        timer = timeit.Timer(stmt, timer=time.thread_time, globals=dict(ns))
        number, elapsed = timer.autorange()  # at least 0.2 s of calls: also the warm-up
        out[key] = (timer, max(1, int(number * BATCH_S / elapsed)))
    return out


def measure(cells: dict[tuple[str, str], Call], repeats: int) -> dict[tuple[str, str], float]:
    """Seconds per call: the minimum over ``repeats`` interleaved rounds."""
    prepared = timers(cells)
    best = dict.fromkeys(prepared, float("inf"))
    for _ in range(repeats):
        for key, (timer, number) in prepared.items():
            # One untimed call first: it pays for the memory the previous library gave back
            # (page faults), which otherwise lands on the first call of whichever comes next.
            timer.timeit(1)
            best[key] = min(best[key], timer.timeit(number) / number)
    return best


def fmt(seconds: float) -> str:
    us = seconds * 1e6
    if us >= 100:
        return f"{us:,.0f}"
    if us >= 10:
        return f"{us:.1f}"
    return f"{us:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--only", default="small,message,events,orders")
    parser.add_argument("--layout", default="plain,slots")
    parser.add_argument("--markdown-out", type=Path)
    args = parser.parse_args()
    ensure_venv()

    results: dict[tuple[str, str, str, str], float] = {}  # (layout, case, op, library) -> seconds
    rows: list[tuple[str, str]] = []
    load_before = benchlib.load_average()
    for layout in args.layout.split(","):
        cases = make_cases(make_types(slots=layout == "slots"))
        for name in args.only.split(","):
            tp, value = cases[name]
            import kowito_json

            cells = calls(tp, value, kowito_json.encode(value))
            check(tp, value, cells)
            for (lib, op), seconds in measure(cells, args.repeats).items():
                results[(layout, name, op, lib)] = seconds
            rows.append((layout, name))
            log(f"  {layout:5} {name:8} done")

    markdown = render(results, rows, args, load_before)
    print(markdown)
    if args.markdown_out:
        write_section(args.markdown_out, "json", markdown)
        log(f"wrote {args.markdown_out}")


def versions() -> str:
    from importlib.metadata import version

    names = ["kowito-json", "orjson", "msgspec", "pydantic", "mashumaro"]
    return ", ".join(f"{n} {version(n)}" for n in names)


def render(
    results: dict[tuple[str, str, str, str], float],
    rows: list[tuple[str, str]],
    args: argparse.Namespace,
    load_before: float,
) -> str:
    command = f"python3 benchmarks/json.py --repeats {args.repeats}"
    if args.only != "small,message,events,orders":
        command += f" --only {args.only}"
    if args.layout != "plain,slots":
        command += f" --layout {args.layout}"
    if args.markdown_out:
        command += f" --markdown-out {args.markdown_out}"
    lines = [
        "## JSON: kowito-json's documented calls against orjson, msgspec, pydantic v2 and mashumaro",
        "",
        f"- Command: `{command}`",
        f"- Date: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC",
        f"- Python: {platform.python_version()} (benchmarks/.venv-json); {os.cpu_count()} logical CPUs,"
        f" 1-minute load average {load_before:.2f} before the run and {benchlib.load_average():.2f} after"
        " (other work on the machine skews every number)",
        f"- Versions: {versions()}",
        "- Calls: kowito-json `encode(obj)` / `decode(data, type=T)` (and `decoder_for(T).decode`, cached);"
        " orjson `dumps(obj, default=str)` (its native dataclass path; `default` only for Decimal);"
        " msgspec `json.encode(obj)` / `json.Decoder(T).decode`; pydantic `TypeAdapter(T).dump_json` /"
        " `.validate_json`; mashumaro `ORJSONEncoder(T).encode` / `ORJSONDecoder(T).decode`."
        " Every library gets the same dataclasses.",
        f"- Method: minimum over {args.repeats} rounds; each round times every library in turn (interleaved),"
        f" a `timeit` batch of about {BATCH_S:.2f} s each, one process, timed with `time.thread_time` (CPU time"
        " of the benchmark thread, so time other processes take from it does not count; their cache traffic"
        " still does). Decode = parse + validate + build.",
        "",
        "### Microseconds per call (lower is better)",
        "",
    ]

    def cell(layout: str, case: str, op: str, lib: str) -> str:
        seconds = results.get((layout, case, op, lib))
        return "n/a" if seconds is None else fmt(seconds)

    for op in ("encode", "decode"):
        table = [[LABELS[case], layout, *(cell(layout, case, op, lib) for lib in COLUMNS[op])] for layout, case in rows]
        header = ["case", "dataclass", *(f"{lib} {op}" for lib in COLUMNS[op])]
        lines += [markdown_table(header, table, left=2), ""]

    def ratio(layout: str, case: str, op: str, ours: str, peer: str) -> float:
        return results[(layout, case, op, ours)] / results[(layout, case, op, peer)]

    def best_peer(layout: str, case: str, op: str, peers: list[str]) -> str:
        return min(peers, key=lambda lib: results[(layout, case, op, lib)])

    ratio_rows = []
    for layout, case in rows:
        encode_ratio = ratio(layout, case, "encode", "kowito-json", "orjson")
        decode_ratio = ratio(layout, case, "decode", "kowito-json", "pydantic v2")
        encoder = best_peer(layout, case, "encode", ["orjson", "msgspec", "pydantic v2", "mashumaro"])
        decoder = best_peer(layout, case, "decode", ["msgspec", "pydantic v2", "mashumaro"])
        overhead = (
            results[(layout, case, "decode", "kowito-json")] - results[(layout, case, "decode", "kowito Decoder")]
        )
        ratio_rows.append([
            LABELS[case],
            layout,
            f"{encode_ratio:.2f} ({'met' if encode_ratio <= 1.0 else 'missed'})",
            f"{ratio(layout, case, 'encode', 'kowito-json', encoder):.2f} ({encoder})",
            f"{decode_ratio:.2f} ({'met' if decode_ratio <= 0.8 else 'missed'})",
            f"{ratio(layout, case, 'decode', 'kowito-json', decoder):.2f} ({decoder})",
            f"{overhead * 1e6:+.2f}",
        ])  # fmt: skip
    lines += [
        "### Ratios (kowito-json time / peer time; below 1.00 means kowito-json is faster)",
        "",
        "Targets (issue 24): encode at most 1.0x orjson's native dataclass encoding; decode + validate at most"
        " 0.8x pydantic v2. The last column is what `decode(data, type=T)` costs over a cached"
        " `decoder_for(T).decode` (noise makes it negative at times on the large payloads).",
        "",
        markdown_table(
            [
                "case",
                "dataclass",
                "encode / orjson native",
                "encode / fastest encoder",
                "decode / pydantic v2",
                "decode / fastest decoder",
                "`decode()` - cached `Decoder` (us)",
            ],
            ratio_rows,
            left=2,
        ),
        "",
    ]
    budget_rows = []
    for layout, case in rows:
        ours, parse = results[(layout, case, "decode", "kowito-json")], results[(layout, case, "decode", PARSE_ONLY)]
        target = 0.8 * results[(layout, case, "decode", "pydantic v2")]
        budget_rows.append([
            LABELS[case],
            layout,
            fmt(parse),
            fmt(ours - parse),
            fmt(target - parse),
            f"{(ours - parse) / (target - parse):.1f}x" if target > parse else "none left",
        ])  # fmt: skip
    lines += [
        "### Where kowito-json's decode time goes (microseconds)",
        "",
        "kowito-json decodes in two steps: `orjson.loads` (the parse, in C), then generated Python that checks"
        " each value and builds the dataclasses. The budget is what the 0.8x pydantic target leaves for the"
        " second step once the parse is paid.",
        "",
        markdown_table(
            ["case", "dataclass", "orjson.loads", "generated Python", "budget at 0.8x pydantic", "over budget"],
            budget_rows,
            left=2,
        ),
        "",
    ]
    lines += commentary(results, rows)
    return "\n".join(lines)


def commentary(results: dict[tuple[str, str, str, str], float], rows: list[tuple[str, str]]) -> list[str]:
    """What the tables say, with the numbers of this run: where kowito-json loses, and why."""

    def span(op: str, peer: str, layout: str, cases: tuple[str, ...] = tuple(LABELS)) -> str:
        found = [
            results[(layout, case, op, "kowito-json")] / results[(layout, case, op, peer)]
            for row_layout, case in rows
            if row_layout == layout and case in cases
        ]
        return f"{min(found):.2f}-{max(found):.2f}x" if found else "n/a"

    layouts = {layout for layout, _ in rows}
    lines = ["### Commentary", ""]
    if "plain" in layouts:
        lines.append(
            f"- Encode, plain dataclasses: {span('encode', 'orjson', 'plain')} orjson's time. orjson does all the"
            " writing (kowito-json hands it the object, or a list of such objects, as it is); what is left is"
            " `encode()`'s own Python call, about 0.1 us, which is most of a small object's time, plus for lists"
            " one pass over the items' types. The orders lose more: orjson calls kowito-json's `default=` (Python)"
            " once per Decimal, where the orjson row uses the C builtin `str`."
        )
    if "slots" in layouts:
        lines.append(
            f"- Encode, slots dataclasses: {span('encode', 'orjson', 'slots')} orjson's time: orjson reads slots"
            " attribute by attribute, slower than the generated code that builds the dicts (nested classes"
            " inline) and hands them over."
        )
    decode_spans = "; ".join(
        f"{layout}: {span('decode', 'pydantic v2', layout, ('small', 'message'))} on the small object and the"
        f" message, {span('decode', 'pydantic v2', layout, ('events', 'orders'))} on the 1 000-item lists"
        for layout in sorted(layouts)
    )
    lines.append(
        f"- Decode + validate against pydantic v2 ({decode_spans}). The last table shows why the 0.8x target is"
        " out of reach for generated Python: after `orjson.loads`, the budget left is about half a microsecond"
        " for a small object and 1-1.5 us per event, which must parse a UUID and a date-time and build two"
        " dataclasses; each of those costs a few hundred nanoseconds of CPython on its own. Reaching it needs"
        " compiled code (an accelerator) for the check-and-build step."
    )
    lines += [
        f"- msgspec is the fastest decoder on every shape: kowito-json takes {span('decode', 'msgspec', 'plain')} its"
        f" decode time (plain) and {span('encode', 'msgspec', 'plain')} its encode time. It parses straight"
        " into typed objects in C; kowito-json parses to dicts with orjson and checks them in Python.",
        "- `decode(data, type=T)` against a cached `decoder_for(T).decode`: about 0.1 us, a keyword-argument"
        " call and one dictionary lookup; on the 1 000-item payloads the difference is below the run-to-run"
        " noise of single cells.",
        "- Noise: with other work on the 2 cores (see the load average above), single cells move by 5-30% between"
        " runs even timed in CPU time; compare ratios within one run, and several runs before trusting a 10%"
        " difference.",
        "",
    ]
    return lines


if __name__ == "__main__":
    main()
