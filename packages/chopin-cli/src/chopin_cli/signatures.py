"""Handler signatures that cannot work with chopin-core, found in the AST (``chopin check`` CHK006-CHK008).

chopin-core calls every handler as ``handler(ctx)`` with a :class:`chopin_core.Context`
and answers 500 unless it gets exactly a :class:`chopin_core.Response` back; the request
is read inside the handler with ``ctx.extract(Json[T])``, ``ctx.extract(Query[T])`` (``T`` a
dataclass) or a type with an ``__chopin_extract__`` hook (chopin-auth's ``Auth[Claims]``).
So:

- ``CHK006`` the handler cannot be called that way: it is ``async``, takes no parameter,
  needs more than one argument, or annotates its parameter with a type other than
  ``Context`` (FastAPI style ``def create(item: Item)``: nothing builds ``item``).
- ``CHK007`` its return annotation is not ``Response`` (``-> dict``, ``-> None`` ...).
- ``CHK008`` ``ctx.extract(...)`` is given what no extractor builds: ``Json``/``Query``/
  ``Auth`` without their type, ``Query[int]`` (not a dataclass), ``dict``, ``Request``...

Pure functions over ``ast`` nodes; :mod:`chopin_cli.lint` reports what they return.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterator
from dataclasses import dataclass

__all__ = ["Problem", "extract_problems", "signature_problems"]

#: Types nothing extracts: builtins and chopin-core's own request-side classes.
_NOT_EXTRACTABLE = frozenset(
    {"int", "str", "float", "bool", "bytes", "dict", "list", "tuple", "set", "object", "Any", "typing.Any"}
)
_CORE_NOT_EXTRACTABLE = frozenset({"Context", "Request", "Response", "Headers"})
_QUERY_NOT_DATACLASS = frozenset({"int", "str", "float", "bool", "bytes", "dict", "list", "tuple", "set", "Any"})
_CTX_HINT = "chopin-core calls handler(ctx) with a chopin_core.Context; read the request inside with ctx.extract(...)"


@dataclass(frozen=True)
class Problem:
    """One finding before it gets a path: the node it points at, the rule, the message and the hint."""

    node: ast.AST
    code: str
    message: str
    hint: str


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return f"{base}.{node.attr}" if base else None
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        try:
            parsed = ast.parse(node.value, mode="eval").body
        except SyntaxError:
            return None
        return _dotted(parsed) if isinstance(parsed, ast.Name | ast.Attribute) else None
    return None


def _annotation_text(node: ast.expr) -> str:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return ast.unparse(node)


def signature_problems(func: ast.FunctionDef | ast.AsyncFunctionDef, resolve: Callable[[str], str]) -> list[Problem]:
    """What keeps ``func`` from being called as ``func(ctx)`` and answering with a ``Response``.

    Args:
        func: the handler's definition.
        resolve: maps a local dotted name to what it was imported as (``Ctx`` -> ``chopin_core.Context``).
    """
    problems: list[Problem] = []
    name = func.name
    if isinstance(func, ast.AsyncFunctionDef):
        problems.append(
            Problem(
                func,
                "CHK006",
                f"handler {name!r} is async: chopin-core calls it synchronously and gets a coroutine, not a Response",
                "make it a plain def (the worker's event loop runs handlers one at a time)",
            )
        )
    args = func.args
    positional = [*args.posonlyargs, *args.args]
    required = len(positional) - len(args.defaults)
    required_kw = [a.arg for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True) if d is None]
    if not positional and args.vararg is None:
        problems.append(
            Problem(
                func, "CHK006", f"handler {name!r} takes no parameter; it is called with the request Context", _CTX_HINT
            )
        )
    elif required > 1 or required_kw:
        needed = [a.arg for a in positional[:required]] + required_kw
        problems.append(
            Problem(
                func,
                "CHK006",
                f"handler {name!r} needs {len(needed)} arguments ({', '.join(needed)}); "
                "chopin-core passes only the Context",
                _CTX_HINT + ", e.g. item = ctx.extract(Json[Item])",
            )
        )
    if positional and positional[0].annotation is not None:
        first = positional[0]
        assert first.annotation is not None
        dotted = _dotted(first.annotation)
        resolved = resolve(dotted) if dotted is not None else None
        if resolved is None or resolved.rsplit(".", 1)[-1] not in ("Context", "Any", "object"):
            shown = _annotation_text(first.annotation)
            problems.append(
                Problem(
                    first,
                    "CHK006",
                    f"parameter {first.arg!r} of handler {name!r} is annotated {shown}: "
                    "nothing builds it, the handler receives a chopin_core.Context",
                    f"take ctx: Context and read it inside: ctx.extract(Json[{shown}])",
                )
            )
    if func.returns is not None:
        dotted = _dotted(func.returns)
        resolved = resolve(dotted) if dotted is not None else None
        if resolved is None or resolved.rsplit(".", 1)[-1] != "Response":
            shown = _annotation_text(func.returns)
            problems.append(
                Problem(
                    func.returns,
                    "CHK007",
                    f"handler {name!r} is annotated to return {shown}; "
                    "the worker answers 500 unless it gets a Response",
                    "return a chopin_core.Response (Response.json(value), Response.new(204), ...)",
                )
            )
    return problems


def _extract_calls(func: ast.AST) -> Iterator[tuple[ast.Call, ast.expr]]:
    """``(call, kind)`` for ``x.extract(kind)`` and ``extract(ctx, kind)`` inside ``func``."""
    for node in ast.walk(func):
        if not isinstance(node, ast.Call) or node.keywords:
            continue
        if isinstance(node.func, ast.Attribute) and node.func.attr == "extract" and len(node.args) == 1:
            yield node, node.args[0]
        elif isinstance(node.func, ast.Name) and node.func.id == "extract" and len(node.args) == 2:
            yield node, node.args[1]


def extract_problems(func: ast.FunctionDef | ast.AsyncFunctionDef, resolve: Callable[[str], str]) -> list[Problem]:
    """``extract`` calls in ``func`` whose argument no chopin-core or chopin-auth extractor builds."""
    problems: list[Problem] = []
    for call, kind in _extract_calls(func):
        shown = ast.unparse(kind)
        base = kind.value if isinstance(kind, ast.Subscript) else kind
        dotted = _dotted(base)
        if dotted is None:
            continue
        resolved = resolve(dotted)
        last = resolved.rsplit(".", 1)[-1]
        from_core = resolved.startswith("chopin_core.")
        from_auth = resolved.startswith("chopin_auth.")
        message = None
        if not isinstance(kind, ast.Subscript):
            if (from_core and last in ("Json", "Query")) or (from_auth and last == "Auth"):
                message = (
                    f"{shown} needs its type: {last}[Claims]"
                    if last == "Auth"
                    else f"{shown} needs its type: {last}[T]"
                )
            elif resolved in _NOT_EXTRACTABLE or (from_core and last in _CORE_NOT_EXTRACTABLE):
                message = f"nothing extracts {shown}"
        elif from_core and last == "Query":
            arg = _dotted(kind.slice)
            if arg is not None and resolve(arg).rsplit(".", 1)[-1] in _QUERY_NOT_DATACLASS:
                message = f"{shown}: Query[T] builds a dataclass from the query string, and {arg} is not one"
            elif isinstance(kind.slice, ast.Subscript | ast.BinOp | ast.Tuple):
                message = f"{shown}: Query[T] builds a dataclass from the query string"
        elif from_core and last not in ("Json", "Query"):
            message = f"nothing extracts {shown}"
        if message is not None:
            problems.append(
                Problem(
                    call,
                    "CHK008",
                    f"handler {func.name!r}: {message}",
                    "extract Json[T] (body), Query[T] (a dataclass from the query string) "
                    "or a type with __chopin_extract__ such as chopin_auth.Auth[Claims]",
                )
            )
    return problems
