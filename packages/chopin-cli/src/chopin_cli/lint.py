"""``chopin check``: an architectural linter over the project's AST.

Handlers run inside a worker's event loop, so what is harmless in a script stalls every
connection of that worker.  The rules:

- ``CHK000`` the file does not parse.
- ``CHK001`` a blocking call (``time.sleep``, ``requests``, ``urllib.request.urlopen``,
  ``subprocess``, ``os.system``, ``input``, module-level ``httpx`` calls) in a handler.
- ``CHK002`` a handler mutates module-level state (``global``, ``CACHE[k] = v``,
  ``ITEMS.append(...)``): each worker has its own copy, so the state silently diverges.
- ``CHK003`` two handlers claim the same method and path (``:param`` names ignored).
- ``CHK004`` a handler without a docstring (its first line is the OpenAPI summary).
- ``CHK005`` a ``@model(table=...)`` class whose table no migration creates.
- ``CHK006``-``CHK008`` a handler signature that cannot work with chopin-core: it cannot be
  called as ``handler(ctx)``, is annotated to return something other than ``Response``, or
  extracts what no extractor builds (:mod:`chopin_cli.signatures`).  Handlers are the
  decorated ones and those registered with ``router.get("/path", handler)``.

A finding on a line carrying ``# noqa`` or ``# noqa: CHKnnn`` is skipped.  The linter is
sans-IO at its core: :func:`check_source` takes text and returns findings.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from .signatures import extract_problems, signature_problems

__all__ = ["Finding", "RouteSeen", "check_files", "check_source", "tables_created"]

ROUTE_DECORATORS = frozenset({"get", "post", "put", "patch", "delete", "head", "options", "route"})
MUTATING_METHODS = frozenset(
    {
        "append",
        "appendleft",
        "extend",
        "extendleft",
        "insert",
        "pop",
        "popleft",
        "popitem",
        "remove",
        "clear",
        "update",
        "setdefault",
        "add",
        "discard",
    }
)
_HTTPX_CALLS = ("get", "post", "put", "patch", "delete", "head", "options", "request", "stream")
#: Blocking callables (dotted, after resolving imports) and the hint for each.
BLOCKING: dict[str, str] = {
    "time.sleep": "handlers must not sleep: it stalls every connection of the worker; "
    "move the wait to a background job or use a timer",
    "urllib.request.urlopen": "make outbound HTTP calls outside the handler (a worker thread or a queue), "
    "or keep them very short with a timeout",
    "subprocess.run": "run subprocesses outside the request path (a job queue)",
    "subprocess.call": "run subprocesses outside the request path (a job queue)",
    "subprocess.check_call": "run subprocesses outside the request path (a job queue)",
    "subprocess.check_output": "run subprocesses outside the request path (a job queue)",
    "os.system": "run shell commands outside the request path (a job queue)",
    "input": "a handler cannot read the terminal; take the value from the request",
    **{
        f"httpx.{name}": "a synchronous HTTP call blocks the worker; call it outside the handler"
        for name in _HTTPX_CALLS
    },
}
BLOCKING_MODULES: dict[str, str] = {
    "requests": "requests blocks the worker for the whole HTTP exchange; call it outside the handler "
    "(a job queue), or keep the call short with a timeout",
}
_SKIP_DIRS = frozenset({".venv", "venv", ".git", "__pycache__", ".tox", "build", "dist", "node_modules", ".mypy_cache"})


@dataclass(frozen=True, order=True)
class Finding:
    """One problem: where it is, its rule code, what is wrong, and how to fix it."""

    path: str
    line: int
    col: int
    code: str
    message: str
    hint: str

    def render(self) -> str:
        """``path:line:col: CODE message`` (the hint goes on the next line)."""
        return f"{self.path}:{self.line}:{self.col}: {self.code} {self.message}"


@dataclass(frozen=True)
class RouteSeen:
    """A decorated route, for the cross-file conflict check."""

    method: str
    path: str
    where: str  # path:line
    file: str
    line: int
    col: int


@dataclass(frozen=True)
class ModelSeen:
    """A ``@model`` class and the table it declares."""

    name: str
    table: str
    file: str
    line: int
    col: int


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return f"{base}.{node.attr}" if base else None
    return None


def _import_aliases(tree: ast.Module) -> dict[str, str]:
    """Local name -> the dotted name it stands for (``sleep`` -> ``time.sleep``)."""
    aliases: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    aliases[alias.asname] = alias.name
                else:
                    top = alias.name.split(".")[0]
                    aliases[top] = top
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return aliases


def _resolve(name: str, aliases: dict[str, str]) -> str:
    head, _, rest = name.partition(".")
    base = aliases.get(head)
    if base is None:
        return name
    return f"{base}.{rest}" if rest else base


def _route_of(decorator: ast.expr) -> tuple[str, str] | None:
    """``(METHOD, path)`` when ``decorator`` is ``@get("/p")``, ``@router.post("/p")``, ``@route("GET", "/p")``."""
    if not isinstance(decorator, ast.Call):
        return None
    func = decorator.func
    name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
    if name not in ROUTE_DECORATORS:
        return None
    args = [a.value for a in decorator.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
    if name == "route":
        return (args[0].upper(), args[1]) if len(args) >= 2 else None
    return (name.upper(), args[0]) if args else None


def _registered_handlers(tree: ast.Module) -> Iterator[str]:
    """Names passed as the handler of ``router.get("/p", name)`` or ``router.route("GET", "/p", name)``."""
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        method, args = node.func.attr, node.args
        if method == "route" and len(args) == 3:
            path, handler = args[1], args[2]
        elif method in ROUTE_DECORATORS and method != "route" and len(args) == 2:
            path, handler = args[0], args[1]
        else:
            continue
        if (
            isinstance(path, ast.Constant)
            and isinstance(path.value, str)
            and path.value.startswith("/")
            and isinstance(handler, ast.Name)
        ):
            yield handler.id


def _module_globals(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in tree.body:
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = list(node.targets)
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets = [node.target]
        for target in targets:
            for sub in ast.walk(target):
                if isinstance(sub, ast.Name):
                    names.add(sub.id)
    return names


def _local_names(func: ast.FunctionDef | ast.AsyncFunctionDef) -> set[str]:
    names = {a.arg for a in (*func.args.posonlyargs, *func.args.args, *func.args.kwonlyargs)}
    for extra in (func.args.vararg, func.args.kwarg):
        if extra is not None:
            names.add(extra.arg)
    for node in ast.walk(func):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
    declared_global = {n for node in ast.walk(func) if isinstance(node, ast.Global) for n in node.names}
    return names - declared_global


def _model_table(node: ast.ClassDef) -> str | None:
    for decorator in node.decorator_list:
        if not isinstance(decorator, ast.Call):
            continue
        name = _dotted(decorator.func)
        if name is None or name.split(".")[-1] != "model":
            continue
        for kw in decorator.keywords:
            if kw.arg == "table" and isinstance(kw.value, ast.Constant) and isinstance(kw.value.value, str):
                return kw.value.value
        return _snake(node.name) + "s"
    return None


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


class _FileChecker:
    def __init__(self, tree: ast.Module, path: str, lines: list[str]) -> None:
        self.tree = tree
        self.path = path
        self.lines = lines
        self.aliases = _import_aliases(tree)
        self.globals = _module_globals(tree)
        self.findings: list[Finding] = []
        self.routes: list[RouteSeen] = []
        self.models: list[ModelSeen] = []

    def add(self, node: ast.AST, code: str, message: str, hint: str) -> None:
        line = getattr(node, "lineno", 1)
        col = getattr(node, "col_offset", 0) + 1
        text = self.lines[line - 1] if 0 < line <= len(self.lines) else ""
        match = re.search(r"#\s*noqa(?::\s*([A-Z0-9, ]+))?", text)
        if match and (match.group(1) is None or code in re.split(r"[,\s]+", match.group(1))):
            return
        self.findings.append(Finding(self.path, line, col, code, message, hint))

    def run(self) -> None:
        checked: set[str] = set()
        for node in ast.walk(self.tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                routes = [r for r in map(_route_of, node.decorator_list) if r is not None]
                if routes:
                    self.check_handler(node, routes)
                    checked.add(node.name)
            elif isinstance(node, ast.ClassDef):
                table = _model_table(node)
                if table is not None:
                    self.models.append(ModelSeen(node.name, table, self.path, node.lineno, node.col_offset + 1))
        functions = {n.name: n for n in self.tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}
        for name in _registered_handlers(self.tree):
            func = functions.get(name)
            if func is not None and name not in checked:
                checked.add(name)
                self.check_signature(func)

    def check_signature(self, func: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        def resolve(name: str) -> str:
            return _resolve(name, self.aliases)

        for problem in (*signature_problems(func, resolve), *extract_problems(func, resolve)):
            self.add(problem.node, problem.code, problem.message, problem.hint)

    def check_handler(self, func: ast.FunctionDef | ast.AsyncFunctionDef, routes: list[tuple[str, str]]) -> None:
        for method, path in routes:
            where = f"{self.path}:{func.lineno}"
            self.routes.append(RouteSeen(method, path, where, self.path, func.lineno, func.col_offset + 1))
        if ast.get_docstring(func) is None:
            self.add(
                func,
                "CHK004",
                f"handler {func.name!r} has no docstring",
                "add a docstring: its first line becomes the OpenAPI summary",
            )
        self.check_signature(func)
        local = _local_names(func)
        for node in ast.walk(func):
            if isinstance(node, ast.Call):
                self.check_call(func, node, local)
            elif isinstance(node, ast.Global):
                for name in node.names:
                    self.add(
                        node,
                        "CHK002",
                        f"handler {func.name!r} rebinds the module global {name!r}",
                        "each worker process has its own copy: keep shared state in the database or a cache server",
                    )
            elif isinstance(node, ast.Assign | ast.AugAssign | ast.Delete):
                targets = node.targets if isinstance(node, ast.Assign | ast.Delete) else [node.target]
                for target in targets:
                    if isinstance(target, ast.Subscript | ast.Attribute):
                        self.check_store(func, target, local)

    def check_store(self, func: ast.AST, target: ast.Subscript | ast.Attribute, local: set[str]) -> None:
        base = target.value
        if isinstance(base, ast.Name) and base.id in self.globals and base.id not in local:
            name = getattr(func, "name", "?")
            self.add(
                target,
                "CHK002",
                f"handler {name!r} mutates the module global {base.id!r}",
                "each worker process has its own copy: keep shared state in the database or a cache server",
            )

    def check_call(self, func: ast.FunctionDef | ast.AsyncFunctionDef, call: ast.Call, local: set[str]) -> None:
        name = _dotted(call.func)
        if name is None:
            return
        head = name.split(".")[0]
        if head not in local:
            resolved = _resolve(name, self.aliases)
            hint = BLOCKING.get(resolved)
            module = resolved.split(".")[0]
            if hint is None and module in BLOCKING_MODULES and "." in resolved:
                hint = BLOCKING_MODULES[module]
            if hint is not None and (head in self.aliases or resolved == "input"):
                self.add(call, "CHK001", f"blocking call {resolved}() in handler {func.name!r}", hint)
                return
        if (
            isinstance(call.func, ast.Attribute)
            and call.func.attr in MUTATING_METHODS
            and isinstance(call.func.value, ast.Name)
            and call.func.value.id in self.globals
            and call.func.value.id not in local
        ):
            self.add(
                call,
                "CHK002",
                f"handler {func.name!r} mutates the module global {call.func.value.id!r} (.{call.func.attr}())",
                "each worker process has its own copy: keep shared state in the database or a cache server",
            )


def check_source(source: str, path: str) -> tuple[list[Finding], list[RouteSeen], list[ModelSeen]]:
    """Lint one file's text: its findings, the routes it declares and the models it holds."""
    try:
        tree = ast.parse(source, path)
    except SyntaxError as exc:
        finding = Finding(
            path, exc.lineno or 1, exc.offset or 1, "CHK000", f"syntax error: {exc.msg}", "fix the syntax"
        )
        return [finding], [], []
    checker = _FileChecker(tree, path, source.splitlines())
    checker.run()
    return sorted(checker.findings), checker.routes, checker.models


def _route_key(route: RouteSeen) -> tuple[str, str]:
    segments = [":" if s.startswith(":") else "*" if s.startswith("*") else s for s in route.path.split("/")]
    return route.method, "/".join(segments)


def tables_created(sql_texts: Iterable[str]) -> set[str]:
    """The tables ``CREATE TABLE`` statements in ``sql_texts`` create (lower case, schema dropped)."""
    pattern = re.compile(
        r'create\s+(?:unlogged\s+)?table\s+(?:if\s+not\s+exists\s+)?(?:"?\w+"?\s*\.\s*)?"?(\w+)"?', re.IGNORECASE
    )
    return {m.group(1).lower() for text in sql_texts for m in pattern.finditer(text)}


def _python_files(paths: Iterable[Path]) -> Iterator[Path]:
    for path in paths:
        if path.is_file():
            yield path
        elif path.is_dir():
            for found in sorted(path.rglob("*.py")):
                if not _SKIP_DIRS.intersection(found.relative_to(path).parts[:-1]):
                    yield found


def check_files(paths: Iterable[Path], migrations_dir: Path | None, relative_to: Path) -> list[Finding]:
    """Lint every ``.py`` file under ``paths``; models are checked against ``migrations_dir``."""
    findings: list[Finding] = []
    routes: list[RouteSeen] = []
    models: list[ModelSeen] = []
    for file in _python_files(paths):
        try:
            shown = str(file.resolve().relative_to(relative_to.resolve()))
        except ValueError:
            shown = str(file)
        try:
            source = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            findings.append(Finding(shown, 1, 1, "CHK000", f"cannot read: {exc}", "make the file UTF-8 text"))
            continue
        found, declared, declared_models = check_source(source, shown)
        findings.extend(found)
        routes.extend(declared)
        models.extend(declared_models)
    seen: dict[tuple[str, str], RouteSeen] = {}
    for route in routes:
        key = _route_key(route)
        first = seen.setdefault(key, route)
        if first is not route:
            findings.append(
                Finding(
                    route.file,
                    route.line,
                    route.col,
                    "CHK003",
                    f"route {route.method} {route.path} conflicts with {first.method} {first.path} at {first.where}",
                    "give one of the handlers another path or method (the server refuses to start with both)",
                )
            )
    if models:
        texts = []
        if migrations_dir is not None and migrations_dir.is_dir():
            texts = [p.read_text(encoding="utf-8", errors="replace") for p in sorted(migrations_dir.rglob("*.sql"))]
        created = tables_created(texts)
        for m in models:
            if m.table.lower() not in created:
                findings.append(
                    Finding(
                        m.file,
                        m.line,
                        m.col,
                        "CHK005",
                        f"model {m.name} (table {m.table!r}) has no migration creating its table",
                        "generate one with `chopin generate model`, or add a migrations/*.up.sql with CREATE TABLE",
                    )
                )
    return sorted(findings)
