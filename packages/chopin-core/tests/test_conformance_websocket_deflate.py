"""Autobahn|Testsuite sections 12 and 13 (permessage-deflate, RFC 7692) against a chopin echo server.

The client is :class:`test_conformance_websocket.Client` (frames built by hand, zlib for
the compression); this module adds Autobahn's case list for compression
(``autobahntestsuite/case/case12_x_x.py``, fuzzingclient mode):

* 12.j.i: the default offer (``permessage-deflate; client_no_context_takeover;
  client_max_window_bits``) on five payloads (12.1 JSON text, 12.2 a 512x512 bitmap,
  12.3 German verse sent as binary, 12.4 HTML text, 12.5 a 1 MB PDF-like file);
* 13.j.i: the JSON payload under seven offers (13.1 default ... 13.7 three offers in one
  header), the offers Autobahn's client makes, spelled as it spells them;
* i = 1..18: Autobahn's ``MSG_SIZES``, message sizes of 16 B to 128 KiB, whole or
  auto-fragmented into frames of 256 B to 32 KiB of compressed payload.

A case sends a message, waits for its echo (type, length and bytes checked), and so on,
then closes with 1000 and expects a clean close.  Messages are consecutive slices of the
payload, wrapping at its end, cut by characters for text (Autobahn's ``sendOne``).  The
client also checks the server's answer to each offer (RFC 7692 7.1: a requested
``server_no_context_takeover`` and ``server_max_window_bits`` must be echoed) and
inflates with exactly the window the server agreed to, with a fresh inflater per message
when it promised ``server_no_context_takeover``: a server that used a larger window or
kept its context would fail here.

Payloads: Autobahn's corpus files (``testdata/``) are not ours to copy (an image, a PDF
and a Gutenberg text among them), so each is replaced by generated data of the same
kind and size, built from a fixed seed: same slicing, same compressibility class
(text, image, incompressible streams).

Size: Autobahn sends 1000 messages per case (about 10 GB over the 216 cases).  The
default run keeps every case, every message size and every fragmentation, but sends
``min(1000, max(4, 64 KiB / size))`` messages: all 1000 for 16 and 64 bytes, 4 of 128
KiB.  ``CONFORMANCE_LONG=1`` sends Autobahn's 1000 every time.
"""

from __future__ import annotations

import functools
import json
import os
import random
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import ServerProcess
from test_conformance_websocket import OK, OP_BINARY, OP_TEXT, Client, closes_cleanly

LONG = os.environ.get("CONFORMANCE_LONG") == "1"
DEFAULT_BYTES = 64 << 10  # per case in the default run: enough messages to pass one 32 KiB window

# Autobahn's MSG_SIZES: (payload length, message count, timeout, auto-fragment size).
# The timeout is Autobahn's budget for all 1000 messages; ours is per message.
MSG_SIZES = [
    (16, 1000, 60, 0),
    (64, 1000, 60, 0),
    (256, 1000, 120, 0),
    (1024, 1000, 240, 0),
    (4096, 1000, 480, 0),
    (8192, 1000, 480, 0),
    (16384, 1000, 480, 0),
    (32768, 1000, 480, 0),
    (65536, 1000, 480, 0),
    (131072, 1000, 480, 0),
    (8192, 1000, 480, 256),
    (16384, 1000, 480, 256),
    (32768, 1000, 480, 256),
    (65536, 1000, 480, 256),
    (131072, 1000, 480, 256),
    (131072, 1000, 480, 1024),
    (131072, 1000, 480, 4096),
    (131072, 1000, 480, 32768),
]


def offer(no_context_takeover: bool = False, max_window_bits: int = 0) -> str:
    """Autobahn's ``PerMessageDeflateOffer(requestNoContextTakeover, requestMaxWindowBits)`` as sent.

    ``accept_no_context_takeover`` and ``accept_max_window_bits`` are on by default, hence
    the two ``client_*`` parameters in every offer.
    """
    value = "permessage-deflate; client_no_context_takeover; client_max_window_bits"
    if no_context_takeover:
        value += "; server_no_context_takeover"
    if max_window_bits:
        value += f"; server_max_window_bits={max_window_bits}"
    return value


# 13.j: Autobahn's DEFLATE_PARAMS, the client's side of each pair.  (Before 2020 the
# window of 13.3, 13.5 and 13.7's first offer was 8 bits; zlib no longer compresses raw
# deflate with an 8-bit window, and Autobahn moved them to 9.)
OFFERS_13: dict[int, list[tuple[bool, int]]] = {
    1: [(False, 0)],
    2: [(True, 0)],
    3: [(False, 9)],
    4: [(False, 15)],
    5: [(True, 9)],
    6: [(True, 15)],
    7: [(True, 9), (True, 0), (False, 0)],
}


# -- the payloads -----------------------------------------------------------------------


def _words(text: str) -> list[str]:
    return text.split()


@dataclass(frozen=True)
class Payload:
    """One of Autobahn's test data sets: its text (``str``) or bytes, and how it is sent."""

    title: str
    data: str | bytes

    @property
    def binary(self) -> bool:
        return isinstance(self.data, bytes)


_WORDS_DE = _words(
    "Habe nun ach Philosophie Juristerei und Medizin leider auch Theologie durchaus studiert "
    "mit heißem Bemühn da steh ich nun ich armer Tor bin so klug als wie zuvor heiße Magister "
    "heiße Doktor gar ziehe schon an die zehen Jahr herauf herab und quer und krumm meine "
    "Schüler an der Nase herum und sehe daß wir nichts wissen können das will mir schier das "
    "Herz verbrennen zwar bin ich gescheiter als all die Laffen Doktoren Schreiber und Pfaffen "
    "mich plagen keine Skrupel noch Zweifel fürchte mich weder vor Hölle noch Teufel Geist Mephistopheles"
)
_WORDS_EN = _words(
    "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut "
    "labore et dolore magna aliqua naïve café résumé Ångström Zoë São Paulo Kraków Øresund "
    "Ελλάδα Москва 東京 서울 — “quoted” ellipsis… € £ ¥"
)


def _json_text(rng: random.Random, size: int) -> str:
    """Records in the shape of JSON generators' output (data1.json is one), non-ASCII included."""
    records = []
    length = 0
    i = 0
    while length < size:
        record = {
            "_id": f"{rng.getrandbits(96):024x}",
            "index": i,
            "guid": f"{rng.getrandbits(128):032x}",
            "isActive": rng.random() < 0.5,
            "balance": f"${rng.randint(1000, 4000):,}.{rng.randint(0, 99):02d}",
            "age": rng.randint(20, 40),
            "name": " ".join(rng.choice(_WORDS_EN).title() for _ in range(2)),
            "about": " ".join(rng.choice(_WORDS_EN) for _ in range(rng.randint(20, 60))),
            "registered": f"20{rng.randint(10, 24)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T08:00:00",
            "latitude": round(rng.uniform(-90, 90), 6),
            "longitude": round(rng.uniform(-180, 180), 6),
            "tags": [rng.choice(_WORDS_EN) for _ in range(7)],
            "friends": [{"id": k, "name": rng.choice(_WORDS_EN)} for k in range(3)],
        }
        chunk = json.dumps(record, ensure_ascii=False, indent=2)
        records.append(chunk)
        length += len(chunk) + 2
        i += 1
    return "[\n" + ",\n".join(records) + "\n]\n"


def _html_text(rng: random.Random, size: int) -> str:
    parts = ['<!DOCTYPE html>\n<html lang="en">\n<head><meta charset="utf-8"><title>data1</title></head>\n<body>\n']
    length = len(parts[0])
    while length < size:
        words = [rng.choice(_WORDS_EN) for _ in range(rng.randint(10, 40))]
        row = (
            f'<div class="item item-{rng.randint(0, 9)}" id="n{rng.getrandbits(32):08x}">\n'
            f'  <h2><a href="/item/{rng.randint(1, 99999)}">{" ".join(words[:3])}</a></h2>\n'
            f"  <p>{' '.join(words)} &amp; &lt;more&gt;</p>\n"
            f"  <table><tr><td>{rng.randint(0, 999)}</td><td>{rng.choice(_WORDS_EN)}</td></tr></table>\n</div>\n"
        )
        parts.append(row)
        length += len(row)
    parts.append("</body>\n</html>\n")
    return "".join(parts)


def _verse(rng: random.Random, size: int) -> bytes:
    """German verse in UTF-8, with speakers and stage lines, sent as binary as 12.3 does."""
    lines = ["Faust. Der Tragödie erster Teil", ""]
    length = 0
    while length < size:
        if rng.random() < 0.1:
            lines += ["", rng.choice(["FAUST:", "MEPHISTOPHELES:", "WAGNER:", "CHOR DER ENGEL:"])]
        line = " ".join(rng.choice(_WORDS_DE) for _ in range(rng.randint(4, 9))) + rng.choice(",.;!?")
        lines.append(line[0].upper() + line[1:])
        length += len(line) + 1
    return ("\r\n".join(lines) + "\r\n").encode()


def _bitmap(rng: random.Random) -> bytes:
    """A 512x512 8-bit grey BMP (263222 bytes, as lena512.bmp): smooth shapes with noise."""
    width = height = 512
    palette = b"".join(bytes((g, g, g, 0)) for g in range(256))
    offset = 14 + 40 + len(palette)
    header = struct.pack("<2sIHHI", b"BM", offset + width * height, 0, 0, offset)
    dib = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 8, 0, width * height, 2835, 2835, 256, 0)
    noise = rng.randbytes(width * height)
    rows = []
    for y in range(height):
        base = [(x * x + y * y) // 1024 + (x // 64) * (y // 64) for x in range(width)]
        row_noise = noise[y * width : (y + 1) * width]
        rows.append(bytes((b + (n & 0x07)) & 0xFF for b, n in zip(base, row_noise, strict=True)))
    return header + dib + palette + b"".join(rows)


def _pdf_like(rng: random.Random, size: int) -> bytes:
    """A PDF-shaped file: text objects between mostly incompressible (already deflated) streams."""
    parts = [b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n"]
    length = len(parts[0])
    n = 1
    while length < size:
        stream = rng.randbytes(rng.randint(2000, 30000))
        text = (
            f"{n} 0 obj\n<< /Length {len(stream)} /Filter /FlateDecode >>\nstream\n".encode()
            + stream
            + b"\nendstream\nendobj\n"
            + f"{n + 1} 0 obj\n<< /Type /Page /MediaBox [0 0 612 792] /Contents {n} 0 R >>\nendobj\n".encode()
        )
        parts.append(text)
        length += len(text)
        n += 2
    parts.append(b"trailer\n<< /Root 1 0 R >>\n%%EOF\n")
    return b"".join(parts)


@functools.cache
def payloads() -> list[Payload]:
    """Autobahn's five data sets (WS_COMPRESSION_TESTDATA_KEYS order), generated from fixed seeds."""
    return [
        Payload("JSON (text)", _json_text(random.Random(1), 180_000)),
        Payload("512x512 grey bitmap (binary)", _bitmap(random.Random(2))),
        Payload("German verse (binary)", _verse(random.Random(3), 206_000)),
        Payload("HTML (text)", _html_text(random.Random(4), 238_000)),
        Payload("PDF-like, mostly deflated streams (binary)", _pdf_like(random.Random(5), 1_025_000)),
    ]


# -- the cases --------------------------------------------------------------------------


@dataclass(frozen=True)
class DeflateCase:
    """One case: the payload it slices, its offers, message size, count and fragment size."""

    payload: int  # index into payloads()
    offers: list[tuple[bool, int]]
    size: int
    count: int
    fragment: int

    def messages(self) -> int:
        """How many messages this run sends (see the module docstring)."""
        return self.count if LONG else min(self.count, max(4, DEFAULT_BYTES // self.size))


CASES: dict[str, DeflateCase] = {}
for _j in range(1, 6):
    for _i, (_size, _count, _timeout, _fragment) in enumerate(MSG_SIZES, 1):
        CASES[f"12.{_j}.{_i}"] = DeflateCase(_j - 1, [(False, 0)], _size, _count, _fragment)
for _j, _offers in OFFERS_13.items():
    for _i, (_size, _count, _timeout, _fragment) in enumerate(MSG_SIZES, 1):
        CASES[f"13.{_j}.{_i}"] = DeflateCase(0, _offers, _size, _count, _fragment)


class DeflateClient(Client):
    """:class:`Client` that checks the server's answer to the offers and honours it strictly."""

    def __init__(self, host: str, port: int, offers: list[tuple[bool, int]]) -> None:
        super().__init__(host, port, extensions=", ".join(offer(*o) for o in offers))
        params = dict(_param(p) for p in self.accepted.split(";")[1:])
        assert self.accepted.split(";")[0].strip() == "permessage-deflate", self.accepted
        # RFC 7692 5/7.1: the server accepts one of the offers; which one, its answer shows.
        taken = next((o for o in offers if _answers(params, *o)), None)
        assert taken is not None, f"answer {self.accepted!r} accepts none of the offers {offers}"
        assert offers.index(taken) == 0, f"answer {self.accepted!r}: the first offer was acceptable"
        self.server_bits = int(params.get("server_max_window_bits") or 15)
        self.client_bits = int(params.get("client_max_window_bits") or 15)
        # Inflate with exactly the window the server agreed to: a larger one would fail here.
        self.inflater = zlib.decompressobj(wbits=-self.server_bits)
        self.compressor = zlib.compressobj(wbits=-self.client_bits)


def _param(item: str) -> tuple[str, str | None]:
    name, eq, value = item.strip().partition("=")
    return name.strip(), value.strip().strip('"') if eq else None


def _answers(params: dict[str, str | None], no_context_takeover: bool, max_window_bits: int) -> bool:
    """Whether the server's parameters are a valid answer to one offer (RFC 7692 7.1.1-7.1.2)."""
    allowed = {"server_no_context_takeover", "client_no_context_takeover", "server_max_window_bits"}
    allowed.add("client_max_window_bits")  # the offer has it, so the server may limit the client
    if not set(params) <= allowed:
        return False
    if no_context_takeover and "server_no_context_takeover" not in params:
        return False
    server_bits = params.get("server_max_window_bits")
    if max_window_bits:
        return server_bits is not None and 8 <= int(server_bits) <= max_window_bits
    return server_bits is None or 8 <= int(server_bits) <= 15


@pytest.fixture(scope="module")
def server(serve_module) -> ServerProcess:
    return serve_module("apps.ws_app:app")


def run_case(c: DeflateClient, spec: DeflateCase) -> str:
    """Autobahn's ``sendOne``/``onMessage`` loop: one message, its echo, the next."""
    data = payloads()[spec.payload].data
    op = OP_BINARY if isinstance(data, bytes) else OP_TEXT
    ring = data + data  # a slice that wraps round the end is read across the seam
    start = 0
    for n in range(spec.messages()):
        piece = ring[start : start + spec.size]
        start = (start + spec.size) % len(data)
        message = piece if isinstance(piece, bytes) else piece.encode()
        c.send(c.compressed(op, message, spec.fragment))
        got = c.read_frame()
        assert got is not None, f"message {n}: the server closed the connection"
        assert got[0] == op, f"message {n}: echoed with opcode {got[0]}, sent {op}"
        assert got[1] == message, f"message {n}: echoed {len(got[1])} bytes differ from the {len(message)} sent"
    return closes_cleanly(c, [])


@pytest.mark.parametrize("case_id", list(CASES))
def test_autobahn_deflate_case(server: ServerProcess, case_id: str) -> None:
    spec = CASES[case_id]
    c = DeflateClient(server.host, server.port, spec.offers)
    try:
        assert run_case(c, spec) == OK
    finally:
        c.close()


def test_answers_to_each_offer() -> None:
    """The answer checker refuses what RFC 7692 refuses (so the cases above can trust it)."""
    assert _answers({"client_no_context_takeover": None}, False, 0)
    assert not _answers({"client_no_context_takeover": None}, True, 0)  # nct requested, not echoed
    assert not _answers({"server_no_context_takeover": None}, False, 9)  # window requested, not echoed
    assert not _answers({"server_max_window_bits": "10"}, False, 9)  # a larger window than offered
    assert _answers({"server_max_window_bits": "9", "server_no_context_takeover": None}, True, 9)
    assert not _answers({"x_unknown": None}, False, 0)


def test_payloads_match_autobahns_sizes() -> None:
    """Each stand-in is within 10 % of its file's size and in its compressibility class."""
    raw = [p.data if isinstance(p.data, bytes) else p.data.encode() for p in payloads()]
    # data1.json, lena512.bmp, pg2229.txt, data1.html, 10.1.1.105.5439.pdf
    autobahn = [194_056, 263_222, 222_218, 263_647, 1_042_328]
    assert all(abs(len(r) - want) / want < 0.1 for r, want in zip(raw, autobahn, strict=True))
    assert len(raw[1]) == 263_222
    # Text compresses well, the image less, the PDF-like hardly at all.
    ratios = [len(zlib.compress(r)) / len(r) for r in raw]
    assert ratios[0] < 0.4 and ratios[2] < 0.4 and ratios[3] < 0.4
    assert 0.4 < ratios[1] < 0.9 and ratios[4] > 0.95


def test_case_list_matches_autobahn() -> None:
    assert sum(1 for c in CASES if c.startswith("12.")) == 90
    assert sum(1 for c in CASES if c.startswith("13.")) == 126


SECTION_TITLES = {"12": "permessage-deflate", "13": "permessage-deflate"}


def readme_rows() -> list[str]:
    """The results table's rows for sections 12 and 13 (every case OK, none not run)."""
    rows = []
    for section, title in SECTION_TITLES.items():
        n = sum(1 for c in CASES if c.split(".")[0] == section)
        rows.append(f"| {section} {title} | {n} | {n} | 0 | 0 | 0 | 0 |")
    return rows


def test_readme_table_matches_the_verdicts() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    missing = [row for row in readme_rows() if row not in readme.splitlines()]
    assert not missing, "\n".join(missing)
