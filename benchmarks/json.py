#!/usr/bin/env python3
"""JSON benchmark: kowito-json against orjson, msgspec, pydantic v2, mashumaro and json.

    python3 benchmarks/json.py [--repeats 5] [--only small,list,message] [--markdown-out FILE]

Measures, in one process and one run, encoding and decoding (with validation
where the library validates) of three payloads: a small object, a list of
1 000 nested objects and the TechEmpower message.  Each cell is the best of
``--repeats`` batches, each batch timed with ``time.perf_counter`` and sized to
take about 0.2 s.  The script runs under any python3: it creates
benchmarks/.venv-json from benchmarks/requirements-json.txt (plus kowito-json
from this checkout) on first use and re-runs itself there.
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
import os
import platform
import subprocess
import time
from pathlib import Path
from typing import Any

import benchlib
from benchlib import HERE, REPO, log, markdown_table, write_section

VENV = HERE / ".venv-json"
VENV_PY = VENV / "bin" / "python"
REQUIREMENTS = HERE / "requirements-json.txt"
KOWITO = REPO / "packages" / "kowito-json"


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


@dataclasses.dataclass(slots=True)
class User:
    id: int
    name: str
    email: str
    active: bool
    score: float
    tags: list[str]


@dataclasses.dataclass(slots=True)
class Customer:
    name: str
    email: str


@dataclasses.dataclass(slots=True)
class LineItem:
    sku: str
    qty: int
    price: float


@dataclasses.dataclass(slots=True)
class Order:
    id: int
    customer: Customer
    items: list[LineItem]
    paid: bool
    note: str | None


@dataclasses.dataclass(slots=True)
class Message:
    message: str


def user_value() -> User:
    return User(id=42, name="Ann Example", email="ann@example.com", active=True, score=97.5, tags=["admin", "beta"])


def orders_value() -> list[Order]:
    return [
        Order(
            id=i,
            customer=Customer(name=f"customer {i}", email=f"c{i}@example.com"),
            items=[LineItem(sku=f"SKU-{i}-{j}", qty=j + 1, price=9.99 + j) for j in range(3)],
            paid=i % 2 == 0,
            note=None if i % 3 else "fragile",
        )
        for i in range(1000)
    ]


CASES: dict[str, tuple[Any, Any]] = {}  # name -> (annotation, value); filled in main()


# -- libraries --------------------------------------------------------------------


def build_orjson_constructors() -> dict[str, Any]:
    """orjson decode = loads + T(**d), nested by hand, no validation (the issue's baseline)."""

    def order(d: dict[str, Any]) -> Order:
        return Order(
            id=d["id"],
            customer=Customer(**d["customer"]),
            items=[LineItem(**x) for x in d["items"]],
            paid=d["paid"],
            note=d["note"],
        )

    return {
        "small": lambda d: User(**d),
        "list": lambda d: [order(x) for x in d],
        "message": lambda d: Message(**d),
    }


def loads_then(loads: Any, build: Any) -> Any:
    """A decode function: parse with ``loads``, then build by hand."""
    return lambda data: build(loads(data))


def libraries() -> dict[str, dict[str, tuple[Any, Any]]]:
    """library -> case -> (encode function, decode function)."""
    import json

    import kowito_json as kj
    import mashumaro.codecs.orjson as mcodecs
    import msgspec
    import orjson
    import pydantic

    constructors = build_orjson_constructors()
    out: dict[str, dict[str, tuple[Any, Any]]] = {}

    out["kowito-json"] = {}
    out["kowito (generated)"] = {}
    for name, (tp, _) in CASES.items():
        enc, dec = kj.Encoder(tp), kj.Decoder(tp)
        out["kowito-json"][name] = (enc.encode, dec.decode)
        generated = kj.Encoder(tp)
        generated.native = False  # force the to_builtins + orjson.dumps path, for comparison
        out["kowito (generated)"][name] = (generated.encode, None)

    out["orjson"] = {name: (orjson.dumps, loads_then(orjson.loads, constructors[name])) for name in CASES}

    # msgspec Structs, same shapes.
    class SUser(msgspec.Struct):
        id: int
        name: str
        email: str
        active: bool
        score: float
        tags: list[str]

    class SCustomer(msgspec.Struct):
        name: str
        email: str

    class SLineItem(msgspec.Struct):
        sku: str
        qty: int
        price: float

    class SOrder(msgspec.Struct):
        id: int
        customer: SCustomer
        items: list[SLineItem]
        paid: bool
        note: str | None

    class SMessage(msgspec.Struct):
        message: str

    struct_types = {"small": SUser, "list": list[SOrder], "message": SMessage}
    msg_enc = msgspec.json.Encoder()
    out["msgspec Struct"] = {}
    out["msgspec dataclass"] = {}
    for name, (tp, _) in CASES.items():
        out["msgspec Struct"][name] = (msg_enc.encode, msgspec.json.Decoder(struct_types[name]).decode)
        out["msgspec dataclass"][name] = (msg_enc.encode, msgspec.json.Decoder(tp).decode)

    class PUser(pydantic.BaseModel):
        id: int
        name: str
        email: str
        active: bool
        score: float
        tags: list[str]

    class PCustomer(pydantic.BaseModel):
        name: str
        email: str

    class PLineItem(pydantic.BaseModel):
        sku: str
        qty: int
        price: float

    class POrder(pydantic.BaseModel):
        id: int
        customer: PCustomer
        items: list[PLineItem]
        paid: bool
        note: str | None

    class PMessage(pydantic.BaseModel):
        message: str

    model_types = {"small": PUser, "list": list[POrder], "message": PMessage}
    out["pydantic v2"] = {}
    for name in CASES:
        adapter = pydantic.TypeAdapter(model_types[name])
        out["pydantic v2"][name] = (adapter.dump_json, adapter.validate_json)

    out["mashumaro"] = {}
    for name, (tp, _) in CASES.items():
        out["mashumaro"][name] = (mcodecs.ORJSONEncoder(tp).encode, mcodecs.ORJSONDecoder(tp).decode)

    def std_encode(value: Any) -> bytes:
        if isinstance(value, list):
            return json.dumps([dataclasses.asdict(v) for v in value], separators=(",", ":")).encode()
        return json.dumps(dataclasses.asdict(value), separators=(",", ":")).encode()

    out["json"] = {name: (std_encode, loads_then(json.loads, constructors[name])) for name in CASES}
    return out


def native_values(library: str, case: str, value: Any) -> Any:
    """The payload in the library's own types (pydantic models, msgspec Structs)."""
    if library not in ("pydantic v2", "msgspec Struct"):
        return value
    import kowito_json as kj

    data = kj.encode(value)
    lib = libraries_cache[library][case]
    return lib[1](data)


libraries_cache: dict[str, dict[str, tuple[Any, Any]]] = {}


# -- timing -----------------------------------------------------------------------


def best_per_op(fn: Any, arg: Any, repeats: int) -> float:
    """Seconds per call: the best of ``repeats`` batches of about 0.2 s."""
    number = 1
    while True:  # size the batch
        start = time.perf_counter()
        for _ in range(number):
            fn(arg)
        elapsed = time.perf_counter() - start
        if elapsed > 0.05:
            break
        number *= 4
    number = max(1, int(number * 0.2 / elapsed))
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(number):
            fn(arg)
        best = min(best, (time.perf_counter() - start) / number)
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
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--only", default="small,list,message")
    parser.add_argument("--markdown-out", type=Path)
    args = parser.parse_args()
    ensure_venv()

    import kowito_json as kj

    all_cases = {
        "small": (User, user_value()),
        "list": (list[Order], orders_value()),
        "message": (Message, Message(message="Hello, World!")),
    }
    for name in args.only.split(","):
        CASES[name] = all_cases[name]
    libraries_cache.update(libraries())
    libs = libraries_cache

    # Every library must produce and accept the same JSON before it is timed.
    for name, (_tp, value) in CASES.items():
        reference = kj.encode(value)
        for lib, fns in libs.items():
            encode_fn, decode_fn = fns[name]
            own = native_values(lib, name, value)
            import orjson

            assert orjson.loads(encode_fn(own)) == orjson.loads(reference), (lib, name)
            if decode_fn is not None:
                assert decode_fn(reference) is not None

    results: dict[tuple[str, str, str], float] = {}
    for name, (_tp, value) in CASES.items():
        data = kj.encode(value)
        for lib, fns in libs.items():
            encode_fn, decode_fn = fns[name]
            own = native_values(lib, name, value)
            results[(name, "encode", lib)] = best_per_op(encode_fn, own, args.repeats)
            if decode_fn is not None:
                results[(name, "decode", lib)] = best_per_op(decode_fn, data, args.repeats)
            log(f"  {name:8} {lib:20} done")

    markdown = render(results, libs, args)
    print(markdown)
    if args.markdown_out:
        write_section(args.markdown_out, "json", markdown)
        log(f"wrote {args.markdown_out}")


LABELS = {
    "small": "small object (6 fields)",
    "list": "1 000 nested objects",
    "message": "TechEmpower message",
}


def versions() -> str:
    from importlib.metadata import version

    names = ["kowito-json", "orjson", "msgspec", "pydantic", "mashumaro"]
    return ", ".join(f"{n} {version(n)}" for n in names)


def render(results: dict[tuple[str, str, str], float], libs: dict[str, Any], args: argparse.Namespace) -> str:
    columns = list(libs)
    lines = [
        "## JSON: kowito-json against orjson, msgspec, pydantic, mashumaro and json",
        "",
        f"- Command: `python3 benchmarks/json.py --repeats {args.repeats}"
        + (f" --markdown-out {args.markdown_out}`" if args.markdown_out else "`"),
        f"- Date: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC",
        f"- Python: {platform.python_version()} (benchmarks/.venv-json); {os.cpu_count()} logical CPUs,"
        f" 1-minute load average {benchlib.load_average():.2f} at the end (other work on the machine skews every number)",
        f"- Versions: {versions()}",
        "- Method: best of the repeats, each a batch of about 0.2 s timed with `time.perf_counter`, one process.",
        "- Decode means parse + validate + build the typed value, except `orjson` and `json`: `loads` + `T(**d)`"
        " built by hand, no validation. `kowito (generated)` encodes through the generated to-builtins code instead"
        " of orjson's native dataclass path.",
        "",
        "### Microseconds per operation (lower is better)",
        "",
    ]
    times = [
        [LABELS[case], op, *(fmt(results[(case, op, lib)]) if (case, op, lib) in results else "n/a" for lib in columns)]
        for case in CASES
        for op in ("encode", "decode")
    ]
    lines.append(markdown_table(["case", "op", *columns], times, left=2))

    def r(case: str, op: str, peer: str) -> str:
        return f"{results[(case, op, 'kowito-json')] / results[(case, op, peer)]:.2f}"

    peers = [
        ("encode", "orjson", "encode / orjson native"),
        ("decode", "mashumaro", "decode / mashumaro"),
        ("decode", "pydantic v2", "decode / pydantic v2"),
        ("decode", "msgspec Struct", "decode / msgspec Struct"),
        ("decode", "msgspec dataclass", "decode / msgspec dataclass"),
        ("encode", "msgspec Struct", "encode / msgspec Struct"),
    ]
    ratios = [[LABELS[case], *(r(case, op, peer) for op, peer, _ in peers)] for case in CASES]
    lines += [
        "",
        "### Ratios (kowito-json time / peer time; below 1.00 means kowito-json is faster)",
        "",
        markdown_table(["case", *(title for _, _, title in peers)], ratios),
        "",
        "### Commentary",
        "",
    ]

    def span(op: str, peer: str) -> str:
        ratios = [results[(c, op, "kowito-json")] / results[(c, op, peer)] for c in CASES]
        return f"{min(ratios):.2f}-{max(ratios):.2f}"

    lines += [
        f"- Encode: kowito-json takes {span('encode', 'orjson')}x the time of orjson's native dataclass encoding"
        " (target: at most 1.3x). These payloads are slots dataclasses, where orjson's native path reads"
        " attribute by attribute and generated to-dict code plus `orjson.dumps` is faster; for dict-based"
        " dataclasses without options kowito-json hands the object to orjson's native path, which is faster there.",
        f"- Decode + validate: {span('decode', 'mashumaro')}x mashumaro's time and {span('decode', 'pydantic v2')}x"
        " pydantic v2's (below 1.00 is faster). Against pydantic the large payload is where the gap shows; against"
        " mashumaro (the codegen peer, also orjson.loads + generated code) kowito-json is level, within the noise"
        " of this machine, not clearly ahead. Semantics differ: kowito-json checks exact JSON types and reports"
        " every problem with its path; mashumaro converts with int()/str() and stops at the first bad field.",
        f"- msgspec stays ahead: kowito-json takes {span('decode', 'msgspec Struct')}x msgspec Struct's decode time"
        f" ({span('decode', 'msgspec dataclass')}x with dataclasses) and {span('encode', 'msgspec Struct')}x its"
        " encode time. msgspec parses straight into typed objects in C; kowito-json parses to Python dicts with"
        " orjson and then validates and builds in generated Python.",
        "- Other work was running on this 2-CPU machine; repeated runs move single cells by 10-20%.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
