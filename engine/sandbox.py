"""Restricted evaluation of BPMN script tasks and gateway conditions.

Spiff's default ``PythonScriptEngine`` hands scripts to ``eval``/``exec`` with full builtins, and even an
emptied ``__builtins__`` is escapable through ``().__class__.__base__.__subclasses__()``.  So every
script is parsed and its AST validated *before* it is compiled (``check``), and it then runs against a
whitelist of builtins with a time limit.

Refused statically (``ScriptRejected``, one clear line naming the construct and its line):

* ``import`` / ``from ... import``, ``global``, ``nonlocal``, ``async``/``await``, class keywords
  (``metaclass=``);
* attributes starting with ``_`` (dunders and privates), attributes exposing interpreter internals
  (``gi_frame``, ``f_back``, ``f_globals``, ``tb_frame``, ...), and ``.format``/``.format_map`` unless called
  on a string literal whose fields do not reach such attributes (use f-strings, which are checked);
* names starting with ``__``; inside a class body a small set of harmless dunder methods
  (``__init__``, ``__repr__``, ``__eq__``, ...) may be *defined*, never accessed;
* calling (or decorating with) ``open``, ``eval``, ``exec``, ``compile``, ``getattr``, ``type``, ``object``,
  ``super``, ``property`` and the other names of ``DENIED_NAMES``.  These are not builtins in the sandbox
  either, so any other use of them is a ``NameError`` unless task data defines the name (a data field
  called ``type`` or ``input`` therefore keeps working);
* except clauses whose type is anything but names, dotted names or a tuple of them.

Builtins are a whitelist (``SAFE_BUILTINS`` plus common exceptions); task data, then ``external_context``,
then the environment globals (``datetime``, ``date``, ``timedelta``, ``timezone``, ``Decimal``, a read-only
``math`` subset, ``extra_globals``) are visible, task data winning on name clashes.  The date/time API works in
full (``date.today()``, ``strftime``, ``strptime``): its C code imports ``time``/``_strptime`` through the
builtins' ``__import__``, which here hands out only those two modules and is unreachable from script code.

Time limit: a trace function installed only for the duration of the call counts line/call events of
frames whose code was compiled here (filename ``<bpmn-script>``) and checks the clock every
``CHECK_EVERY`` events; past the deadline it raises ``ScriptTimeout``.  It works in any thread (no
signals) and restores the previous trace function (pytest, coverage, debuggers) afterwards.  CPython
drops a trace function that raised, so a script must not be able to swallow the timeout and keep going:
every ``except`` handler and ``finally`` block is compiled with a guard call as its first statement that
re-raises ``ScriptTimeout`` once the deadline has passed, and except-clause types are restricted to
expressions that cannot run script code.  ``while`` bodies get the same guard, because CPython 3.11 emits
no line event for a single-instruction loop (``while True: pass``).  The guard also re-installs the tracer
if CPython dropped it for another error raised inside it (a ``RecursionError`` the script then caught).

Bounded: pure-Python looping and recursion (time limit, ``RecursionError``); ``**`` / ``<<`` with a constant
right operand above ``MAX_EXPONENT`` and constant powers above ``MAX_CONSTANT_BITS``; repetition of a literal
sequence by a constant beyond ``MAX_LITERAL_REPEAT`` items (``'a' * 10**9``); ``pow()`` with an int exponent
above ``MAX_EXPONENT``; ``iter()`` only takes one argument, so no builtin can loop forever in C
(``iter(int, 1)``); script length ``MAX_SOURCE_CHARS`` and nesting depth (parser/validator recursion).

Not bounded: a single long C-level operation, which no trace event interrupts - ``x ** y`` / ``s * n`` with
variable operands, ``sum(range(10**12))``, ``'x'.ljust(10**9)``, ``format(0, '>1000000000')`` - and memory in
general.  If scripts are not trusted, run workers under an OS memory limit (cgroup / RLIMIT_AS) as well.
Functions, classes, modules, generators and instances of script classes are removed from the task data
after ``execute`` only at the top level, as in Spiff; such values nested in lists or dicts stay.
"""

from __future__ import annotations

import _string
import ast
import builtins
import math
import string
import sys
import textwrap
import time
import traceback
import types
from collections.abc import Callable, Mapping
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from functools import lru_cache
from typing import Any, Literal, NoReturn

from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.bpmn.script_engine.python_engine import PythonScriptEngine
from SpiffWorkflow.bpmn.script_engine.python_environment import BasePythonScriptEngineEnvironment
from SpiffWorkflow.exceptions import SpiffWorkflowException

__all__ = [
    "DENIED_NAMES",
    "SAFE_BUILTINS",
    "SCRIPT_FILENAME",
    "RestrictedScriptEngine",
    "SandboxEnvironment",
    "ScriptRejected",
    "ScriptSyntaxError",
    "ScriptTimeout",
    "ServiceTaskNotSupported",
    "check",
]

SCRIPT_FILENAME = "<bpmn-script>"
"""Filename of every code object compiled here; the tracer and error reporting recognise frames by it."""
SCRIPT_MODULE = "bpmn_script"
"""``__module__`` of classes defined by scripts, used to strip their instances from task data."""

MAX_SOURCE_CHARS = 100_000
MAX_EXPONENT = 10_000
MAX_CONSTANT_BITS = 1_000_000
MAX_LITERAL_REPEAT = 1_000_000
CHECK_EVERY = 64
_FOLD_BITS = 4096  # constant folding in the validator gives up (treats the value as huge) beyond this
_FOLDABLE = (ast.Add, ast.Sub, ast.Mult, ast.Pow, ast.LShift)

SAFE_BUILTINS = (
    "abs", "all", "any", "bool", "dict", "enumerate", "filter", "float", "format", "frozenset", "int",
    "isinstance", "len", "list", "map", "max", "min", "range", "reversed", "round", "set", "sorted", "str",
    "sum", "tuple", "zip", "divmod", "pow", "repr", "hash", "iter", "next", "chr", "ord", "bin", "hex",
    "oct", "slice", "True", "False", "None",
    "Exception", "ArithmeticError", "AssertionError", "AttributeError", "IndexError", "KeyError",
    "LookupError", "NameError", "NotImplementedError", "OverflowError", "RuntimeError", "StopIteration",
    "TypeError", "ValueError", "ZeroDivisionError",
)

DENIED_NAMES = frozenset({
    "open", "eval", "exec", "compile", "__import__", "globals", "locals", "vars", "getattr", "setattr",
    "delattr", "input", "breakpoint", "exit", "quit", "help", "memoryview", "type", "object", "super",
    "classmethod", "staticmethod", "property",
})

_BLOCKED_ATTRIBUTES = frozenset({
    "gi_frame", "gi_code", "gi_yieldfrom", "cr_frame", "cr_code", "cr_await", "cr_origin", "ag_frame",
    "ag_code", "ag_await", "f_back", "f_globals", "f_locals", "f_builtins", "f_code", "f_trace",
    "tb_frame", "tb_next",
})

_ALLOWED_DUNDER_METHODS = frozenset({
    "__init__", "__repr__", "__str__", "__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__",
    "__hash__", "__len__", "__bool__", "__contains__", "__iter__", "__next__", "__getitem__",
})

_GUARD_NAME = "__sandbox_guard__"  # trailing "__" so class bodies do not mangle it
_RESERVED_KEYS = frozenset({"__builtins__", _GUARD_NAME})
_MISSING = object()


class ScriptRejected(Exception):
    """A script or expression refused by the static check, before anything ran."""

    message: str
    line: int | None

    def __init__(self, message: str, line: int | None = None) -> None:
        self.message = message
        self.line = line
        super().__init__(f"line {line}: {message}" if line is not None else message)

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}" if self.line is not None else self.message

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), (self.message, self.line)


class ScriptSyntaxError(ScriptRejected, SyntaxError):
    """A rejection caused by a syntax error; also a ``SyntaxError``, which Spiff's DMN engine relies on."""

    def __init__(self, message: str, line: int | None = None, offset: int | None = None) -> None:
        super().__init__(message, line)
        self.lineno = line
        self.offset = offset


class ScriptTimeout(Exception):
    """A script or expression ran longer than the environment's time limit."""

    def __init__(self, time_limit: float) -> None:
        self.time_limit = time_limit
        super().__init__(f"script ran longer than the time limit of {time_limit:g} s")


# --------------------------------------------------------------------------------------------- validation


def _attribute_problem(name: str) -> str | None:
    if name.startswith("_"):
        return f"attribute '{name}' is not allowed: attributes starting with '_' are private"
    if name in _BLOCKED_ATTRIBUTES:
        return f"attribute '{name}' is not allowed: it exposes interpreter internals"
    return None


def _format_template_problem(template: str) -> str | None:
    """Why a ``str.format`` template is unsafe: its fields can read attributes, which no AST check sees."""
    try:
        for _literal, field, spec, _conversion in string.Formatter().parse(template):
            if field:
                _first, rest = _string.formatter_field_name_split(field)
                for is_attribute, key in rest:
                    if is_attribute and isinstance(key, str):
                        problem = _attribute_problem(key)
                        if problem:
                            return f"format field '{{{field}}}': {problem}"
            if spec:
                problem = _format_template_problem(spec)
                if problem:
                    return problem
    except ValueError:
        return None  # a malformed template fails at run time without reading anything
    return None


def _bits(value: float) -> float:
    return value if math.isinf(value) else float(abs(int(value)).bit_length())


def _fold(node: ast.expr) -> float | None:
    """The value of a constant integer expression, ``math.inf`` when too big to compute safely, else None."""
    if isinstance(node, ast.Constant):
        return node.value if isinstance(node.value, int) else None
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        value = _fold(node.operand)
        if value is None:
            return None
        return -value if isinstance(node.op, ast.USub) and not math.isinf(value) else value
    if not isinstance(node, ast.BinOp) or not isinstance(node.op, _FOLDABLE):
        return None
    left, right = _fold(node.left), _fold(node.right)
    if left is None or right is None:
        return None
    if isinstance(node.op, ast.Pow | ast.LShift) and right < 0:
        return None
    if math.isinf(left) or math.isinf(right):
        return math.inf
    if isinstance(node.op, ast.Add | ast.Sub):
        estimate = max(_bits(left), _bits(right)) + 1
    elif isinstance(node.op, ast.Mult):
        estimate = _bits(left) + _bits(right)
    elif isinstance(node.op, ast.Pow):
        estimate = _bits(left) * right if abs(left) > 1 else 1
    else:
        estimate = _bits(left) + right
    if estimate > _FOLD_BITS:
        return math.inf
    a, b = int(left), int(right)
    if isinstance(node.op, ast.Add):
        return a + b
    if isinstance(node.op, ast.Sub):
        return a - b
    if isinstance(node.op, ast.Mult):
        return a * b
    if isinstance(node.op, ast.Pow):
        return a**b
    return a << b


def _literal_length(node: ast.expr) -> float | None:
    """Length of a literal sequence expression (``'ab'``, ``[0]``, ``'a' * 3``), else None."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str | bytes):
        return len(node.value)
    if isinstance(node, ast.List | ast.Tuple):
        return len(node.elts)
    if isinstance(node, ast.JoinedStr):
        return len(node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _literal_length(node.left), _literal_length(node.right)
        return left + right if left is not None and right is not None else None
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
        for sequence, count in ((node.left, node.right), (node.right, node.left)):
            length, times = _literal_length(sequence), _fold(count)
            if length is not None and times is not None:
                return length * max(times, 0)
    return None


def _describe_number(value: float) -> str:
    """`` 123`` for a folded constant, nothing for one too big to fold (the message then reads fine too)."""
    return "" if math.isinf(value) else f" {int(value)}"


class _Validator(ast.NodeVisitor):
    """Walks a parsed script and raises ScriptRejected at the first construct the sandbox refuses."""

    @staticmethod
    def _reject(message: str, node: ast.AST | None) -> NoReturn:
        raise ScriptRejected(message, getattr(node, "lineno", None))

    def _check_name(self, name: str | None, node: ast.AST) -> None:
        if name and name.startswith("__"):
            self._reject(f"name '{name}' is not allowed: names starting with '__' are reserved", node)

    def _check_decorators(self, decorators: list[ast.expr]) -> None:
        for decorator in decorators:
            target = decorator.func if isinstance(decorator, ast.Call) else decorator
            if isinstance(target, ast.Name) and target.id in DENIED_NAMES:
                self._reject(f"decorator '{target.id}' is not allowed", decorator)

    def visit_Import(self, node: ast.Import) -> None:
        self._reject("imports are not allowed", node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        self._reject("imports are not allowed", node)

    def visit_Global(self, node: ast.Global) -> None:
        self._reject("'global' statements are not allowed", node)

    def visit_Nonlocal(self, node: ast.Nonlocal) -> None:
        self._reject("'nonlocal' statements are not allowed", node)

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> None:
        self._reject("async functions are not allowed", node)

    def visit_Await(self, node: ast.Await) -> None:
        self._reject("'await' is not allowed", node)

    def visit_AsyncFor(self, node: ast.AsyncFor) -> None:
        self._reject("'async for' is not allowed", node)

    def visit_AsyncWith(self, node: ast.AsyncWith) -> None:
        self._reject("'async with' is not allowed", node)

    def visit_Name(self, node: ast.Name) -> None:
        self._check_name(node.id, node)

    def visit_arg(self, node: ast.arg) -> None:
        self._check_name(node.arg, node)
        self.generic_visit(node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        self.generic_visit(node)  # inner attributes first, so `().__class__.__base__` names `__class__`
        problem = _attribute_problem(node.attr)
        if problem:
            self._reject(problem, node)
        if node.attr in ("format", "format_map"):
            receiver = node.value
            if not (isinstance(receiver, ast.Constant) and isinstance(receiver.value, str)):
                self._reject(f"'.{node.attr}' is only allowed on a string literal; use an f-string", node)
            template_problem = _format_template_problem(receiver.value)
            if template_problem:
                self._reject(template_problem, node)

    def visit_Call(self, node: ast.Call) -> None:
        if isinstance(node.func, ast.Name) and node.func.id in DENIED_NAMES:
            self._reject(f"calling '{node.func.id}' is not allowed", node)
        self.generic_visit(node)

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self._check_decorators(node.decorator_list)
        self._check_name(node.name, node)
        self.generic_visit(node)

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self._check_decorators(node.decorator_list)
        self._check_name(node.name, node)
        if node.keywords:
            self._reject("class keywords (such as metaclass=) are not allowed", node)
        for expr in (*node.bases, *node.decorator_list):
            self.visit(expr)
        for statement in node.body:
            if isinstance(statement, ast.FunctionDef) and statement.name in _ALLOWED_DUNDER_METHODS:
                self._check_decorators(statement.decorator_list)
                for child in ast.iter_child_nodes(statement):
                    self.visit(child)
            else:
                self.visit(statement)

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        # The type is evaluated while a timeout propagates, when tracing is off: it must not run script code.
        if node.type is not None:
            parts = node.type.elts if isinstance(node.type, ast.Tuple) else [node.type]
            for part in parts:
                while isinstance(part, ast.Attribute):
                    part = part.value
                if not isinstance(part, ast.Name):
                    self._reject("except clauses may only name exception classes", node.type)
        self._check_name(node.name, node)
        self.generic_visit(node)

    def visit_MatchClass(self, node: ast.MatchClass) -> None:
        for attribute in node.kwd_attrs:
            problem = _attribute_problem(attribute)
            if problem:
                self._reject(problem, node)
        self.generic_visit(node)

    def visit_MatchAs(self, node: ast.MatchAs) -> None:
        self._check_name(node.name, node)
        self.generic_visit(node)

    def visit_MatchStar(self, node: ast.MatchStar) -> None:
        self._check_name(node.name, node)

    def visit_MatchMapping(self, node: ast.MatchMapping) -> None:
        self._check_name(node.rest, node)
        self.generic_visit(node)

    def _check_operation(
        self, op: ast.operator, left: ast.expr | None, right: ast.expr, node: ast.AST
    ) -> None:
        if isinstance(op, ast.Pow | ast.LShift):
            amount = _fold(right)
            what = "exponent" if isinstance(op, ast.Pow) else "shift"
            if amount is not None and amount > MAX_EXPONENT:
                self._reject(f"{what}{_describe_number(amount)} is too large (max {MAX_EXPONENT})", node)
            base = _fold(left) if left is not None else None
            if (
                isinstance(op, ast.Pow)
                and base is not None
                and amount is not None
                and abs(base) > 1
                and amount > 0
                and _bits(base) * amount > MAX_CONSTANT_BITS
            ):
                self._reject(f"constant power is too large (max {MAX_CONSTANT_BITS} bits)", node)
        elif isinstance(op, ast.Mult) and left is not None:
            for sequence, count in ((left, right), (right, left)):
                length, times = _literal_length(sequence), _fold(count)
                if length is not None and times is not None and length * times > MAX_LITERAL_REPEAT:
                    self._reject(
                        f"repeating a literal{_describe_number(times)} times is too large "
                        f"(max {MAX_LITERAL_REPEAT} items)",
                        node,
                    )

    def visit_BinOp(self, node: ast.BinOp) -> None:
        self._check_operation(node.op, node.left, node.right, node)
        self.generic_visit(node)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        self._check_operation(node.op, None, node.value, node)
        self.generic_visit(node)


class _InsertGuards(ast.NodeTransformer):
    """Starts every while-loop body, except handler and finally block with a deadline check."""

    @staticmethod
    def _guard(anchor: ast.stmt) -> ast.stmt:
        call = ast.Expr(ast.Call(ast.Name(_GUARD_NAME, ast.Load()), [], []))
        return ast.copy_location(call, anchor)

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> ast.ExceptHandler:
        self.generic_visit(node)
        node.body.insert(0, self._guard(node.body[0]))
        return node

    def visit_While(self, node: ast.While) -> ast.While:
        # CPython 3.11 emits no line event for a one-instruction loop such as `while True: pass`.
        self.generic_visit(node)
        node.body.insert(0, self._guard(node.body[0]))
        return node

    def _guard_finally(self, node: ast.Try | ast.TryStar) -> ast.AST:
        self.generic_visit(node)
        if node.finalbody:
            node.finalbody.insert(0, self._guard(node.finalbody[0]))
        return node

    def visit_Try(self, node: ast.Try) -> ast.AST:
        return self._guard_finally(node)

    def visit_TryStar(self, node: ast.TryStar) -> ast.AST:
        return self._guard_finally(node)


def _normalise(source: str, mode: str) -> str:
    """Tolerate the indentation BPMN XML adds around scripts, keeping line numbers intact."""
    if mode == "exec":
        return textwrap.dedent(source)
    stripped = source.strip()
    leading_newlines = source[: len(source) - len(source.lstrip())].count("\n")
    return "\n" * leading_newlines + stripped


@lru_cache(maxsize=4096)
def check(source: str, mode: Literal["exec", "eval"]) -> types.CodeType:
    """Parse, validate and compile a script (``exec``) or expression (``eval``) for the sandbox.

    Cached per (source, mode) because gateway conditions are evaluated over and over.
    Raises ScriptRejected (ScriptSyntaxError for syntax errors) naming what is refused and where.
    """
    if mode not in ("exec", "eval"):
        raise ValueError(f"mode must be 'exec' or 'eval', not {mode!r}")
    if not isinstance(source, str):
        raise ScriptRejected(f"a script must be text, not {type(source).__name__}")
    if len(source) > MAX_SOURCE_CHARS:
        raise ScriptRejected(f"script is too long ({len(source)} characters, max {MAX_SOURCE_CHARS})")
    try:
        tree = ast.parse(_normalise(source, mode), filename=SCRIPT_FILENAME, mode=mode)
    except SyntaxError as exc:
        raise ScriptSyntaxError(f"syntax error: {exc.msg}", exc.lineno, exc.offset) from None
    except (RecursionError, MemoryError):
        raise ScriptRejected("script is too deeply nested") from None
    try:
        _Validator().visit(tree)
        tree = ast.fix_missing_locations(_InsertGuards().visit(tree))
        code: types.CodeType = compile(tree, SCRIPT_FILENAME, mode, dont_inherit=True)
    except RecursionError:
        raise ScriptRejected("script is too deeply nested") from None
    except SyntaxError as exc:  # compile-time errors ast.parse lets through, e.g. 'return' outside function
        raise ScriptSyntaxError(f"syntax error: {exc.msg}", exc.lineno, exc.offset) from None
    return code


# ------------------------------------------------------------------------------------------------ runtime


def _iter(*args: Any) -> Any:
    """One-argument ``iter``: ``iter(callable, sentinel)`` can loop forever inside C, past the time limit."""
    if len(args) != 1:
        raise TypeError("iter() takes exactly one argument in scripts (the sentinel form is not available)")
    return iter(args[0])


def _pow(base: Any, exp: Any, mod: Any = None) -> Any:
    """``pow`` refusing integer exponents above MAX_EXPONENT without a modulus (big-int work runs in C)."""
    big_int = isinstance(exp, int) and isinstance(base, int) and abs(base) > 1
    if mod is None and big_int and exp > MAX_EXPONENT:
        raise ValueError(f"exponent {exp} is too large (max {MAX_EXPONENT})")
    return pow(base, exp, mod)


class _MathFunctions:
    """Read-only subset of ``math``; factorial/comb/perm/prod are left out (unbounded big-int work)."""

    __slots__ = ()
    pi = math.pi
    e = math.e
    tau = math.tau
    inf = math.inf
    nan = math.nan
    ceil = math.ceil
    floor = math.floor
    trunc = math.trunc
    sqrt = math.sqrt
    fabs = math.fabs
    fsum = math.fsum
    isclose = math.isclose
    isfinite = math.isfinite
    isinf = math.isinf
    isnan = math.isnan
    exp = math.exp
    log = math.log
    log10 = math.log10
    log2 = math.log2

    def __repr__(self) -> str:
        return "<math functions>"


C_IMPORTS = frozenset({"time", "_strptime"})
"""Modules the C date/time API imports on demand (``date.today()`` and ``strftime`` need ``time``,
``strptime`` needs ``_strptime``)."""


def _c_api_import(name: str, globals_: Any = None, locals_: Any = None, fromlist: Any = (), level: int = 0) -> Any:
    """The sandbox's ``__import__``: C code looks it up in the builtins of the running script's frame.

    Scripts cannot reach it (names starting with ``__`` are refused statically), so it only serves the date and
    time API, and only with the modules in ``C_IMPORTS``; anything else raises ``ImportError``. The script's
    globals are not passed on: they only matter for relative imports, which are refused.
    """
    if level != 0 or name not in C_IMPORTS:
        raise ImportError(f"import of '{name}' is not allowed in scripts")
    return builtins.__import__(name, None, None, fromlist, 0)


_BUILTINS: dict[str, Any] = {name: getattr(builtins, name) for name in SAFE_BUILTINS}
_BUILTINS.update(
    iter=_iter,
    pow=_pow,
    __import__=_c_api_import,  # for the C date/time API only; scripts cannot name it ('__' rule)
    __build_class__=builtins.__build_class__,  # class statements; scripts cannot name it ('__' rule)
    __name__=SCRIPT_MODULE,  # read by class bodies for __module__
)

_DEFAULT_GLOBALS: dict[str, Any] = {
    "datetime": datetime,
    "date": date,
    "timedelta": timedelta,
    "timezone": timezone,
    "Decimal": Decimal,
    "math": _MathFunctions(),
}

_PLAIN_DATA = (str, int, float, bool, type(None), list, dict, tuple, set, frozenset, Decimal, date, timedelta)


def _is_non_data(value: Any) -> bool:
    """What execute() must not leave in task data: code, modules, generators, script objects."""
    return (
        callable(value)
        or isinstance(value, types.ModuleType | types.GeneratorType | _MathFunctions)
        or type(value).__module__ == SCRIPT_MODULE
    )


class _Run:
    """Deadline bookkeeping for one evaluate/execute call; its bound methods are the tracer and guard."""

    __slots__ = ("deadline", "time_limit", "events", "tracer", "local_tracer")

    def __init__(self, time_limit: float) -> None:
        self.time_limit = time_limit
        self.deadline = time.monotonic() + time_limit
        self.events = 0
        # Bound once, so sys.gettrace() can be compared by identity in guard().
        self.tracer: Callable[[types.FrameType, str, Any], Any] = self.trace
        self.local_tracer: Callable[[types.FrameType, str, Any], Any] = self.local_trace

    def trace(self, frame: types.FrameType, event: str, arg: Any) -> Callable[..., Any] | None:
        """Global tracer: only sandbox frames get line events, everything else runs untraced."""
        if frame.f_code.co_filename != SCRIPT_FILENAME:
            return None
        self.local_trace(frame, event, arg)
        return self.local_tracer

    def local_trace(self, frame: types.FrameType, event: str, arg: Any) -> Callable[..., Any]:
        self.events += 1
        if self.events >= CHECK_EVERY:
            self.events = 0
            if time.monotonic() > self.deadline:
                raise ScriptTimeout(self.time_limit)
        return self.local_tracer

    def guard(self) -> None:
        """Compiled into while bodies, except handlers and finally blocks of every script."""
        if time.monotonic() > self.deadline:
            raise ScriptTimeout(self.time_limit)
        if sys.gettrace() is not self.tracer:
            # CPython drops a trace function that raised, e.g. a RecursionError hit inside it, which the
            # script may then have caught: re-arm, including for the frame that is running the handler.
            sys.settrace(self.tracer)
            sys._getframe(1).f_trace = self.local_tracer


class SandboxEnvironment(BasePythonScriptEngineEnvironment):
    """Spiff script environment that validates, restricts and time-limits every script and expression."""

    def __init__(self, time_limit: float = 2.0, extra_globals: dict[str, object] | None = None) -> None:
        if time_limit <= 0:
            raise ValueError("time_limit must be positive")
        base = dict(_DEFAULT_GLOBALS)
        base.update(extra_globals or {})
        super().__init__(environment_globals=base)
        self.time_limit = time_limit
        self._base: dict[str, Any] = base
        # non-data helpers (namespaces and the like) that must not be copied into task data under a new name
        self._helper_ids = frozenset(id(v) for v in base.values() if not isinstance(v, _PLAIN_DATA))

    def _namespace(
        self, context: Mapping[str, Any], external_context: Mapping[str, Any] | None
    ) -> dict[str, Any]:
        namespace = self._base.copy()
        if external_context:
            namespace.update(external_context)
        namespace.update(context)
        namespace["__builtins__"] = _BUILTINS  # after the data, which must never replace it
        return namespace

    def _run(self, code: types.CodeType, namespace: dict[str, Any]) -> Any:
        run = _Run(self.time_limit)
        namespace[_GUARD_NAME] = run.guard
        previous = sys.gettrace()
        sys.settrace(run.tracer)
        try:
            return eval(code, namespace)  # exec-mode code objects run the same way and return None
        finally:
            sys.settrace(previous)

    def evaluate(
        self, expression: str, context: dict[str, Any], external_context: dict[str, Any] | None = None
    ) -> Any:
        """Value of an expression over task data (then external_context, then the environment globals)."""
        return self._run(check(expression, "eval"), self._namespace(context, external_context))

    def execute(
        self, script: str, context: dict[str, Any], external_context: dict[str, Any] | None = None
    ) -> bool:
        """Run a script and apply its assignments and deletions to ``context`` (the task data).

        Names are only written back when the script succeeds, so a failed task is retried on unchanged
        bindings (objects the script mutated in place stay mutated).  Functions, classes, modules,
        generators, script-class instances and untouched globals are never written back.
        """
        external = external_context or {}
        namespace = self._namespace(context, external)
        self._run(check(script, "exec"), namespace)
        for key in [key for key in context if key not in namespace]:
            del context[key]  # the script deleted it
        for key, value in namespace.items():
            if key in _RESERVED_KEYS:
                continue
            if key not in context:
                injected = external[key] if key in external else self._base.get(key, _MISSING)
                if value is injected:
                    continue
            if _is_non_data(value) or id(value) in self._helper_ids:
                context.pop(key, None)
            else:
                context[key] = value
        return True

    def call_service(self, context: dict[str, Any], **kwargs: Any) -> NoReturn:
        raise NotImplementedError("service tasks are run by the Silverflow engine, not by the sandbox")


class ServiceTaskNotSupported(WorkflowTaskException, NotImplementedError):
    """Spiff asked the script engine to run a service task; Silverflow's stepper runs those itself."""

    def __init__(self, message: str, task: Any) -> None:
        WorkflowTaskException.__init__(self, message, task=task)


class RestrictedScriptEngine(PythonScriptEngine):
    """Spiff script engine on a SandboxEnvironment, with error messages that carry the actual reason."""

    environment: SandboxEnvironment

    def __init__(self, environment: SandboxEnvironment | None = None) -> None:
        super().__init__(environment=environment or SandboxEnvironment())

    def validate(self, expression: str) -> None:
        """Static check of an expression; syntax errors stay SyntaxErrors for Spiff's DMN engine."""
        check(expression, "eval")

    def evaluate(self, task: Any, expression: str, external_context: dict[str, Any] | None = None) -> Any:
        """Like Spiff's, but the WorkflowTaskException message says why the expression failed."""
        try:
            return self.environment.evaluate(expression, task.data, external_context)
        except SpiffWorkflowException as exc:
            exc.add_note(f"Error evaluating expression '{expression}'")
            raise
        except Exception as exc:
            line, error_line = self.get_error_line_number_and_content(expression, exc)
            raise WorkflowTaskException(
                f"Error evaluating expression '{expression}': {_describe(exc)}",
                task=task,
                exception=exc,
                line_number=line or None,
                error_line=error_line or None,
            ) from exc

    def execute(self, task: Any, script: str, external_context: dict[str, Any] | None = None) -> bool:
        try:
            result: bool = self.environment.execute(script, task.data, external_context or {})
        except Exception as exc:
            raise self.create_task_exec_exception(task, script, exc) from exc
        return result

    def call_service(self, task: Any, **kwargs: Any) -> NoReturn:
        """Service tasks never run here (Spiff's own error path here references an undefined name)."""
        element = getattr(task.task_spec, "bpmn_id", None) or task.task_spec.name
        raise ServiceTaskNotSupported(
            f"service task '{element}' (operation '{kwargs.get('operation_name')}') cannot be run by the "
            "script engine: the Silverflow engine executes service tasks itself",
            task,
        )

    def create_task_exec_exception(self, task: Any, script: str, err: Exception) -> Exception:
        """Spiff's version, robust to non-string exception args and aware of the sandbox filename."""
        line, error_line = self.get_error_line_number_and_content(script, err)
        if isinstance(err, SpiffWorkflowException):
            err.line_number = line
            err.error_line = error_line
            err.add_note(f"Python script error on line {line}: '{error_line}'")
            return err
        return WorkflowTaskException(
            _describe(err), task=task, exception=err, line_number=line, error_line=error_line
        )

    def get_error_line_number_and_content(self, script: str, err: BaseException) -> tuple[int, str]:
        line = 0
        if isinstance(err, ScriptRejected):
            line = err.line or 0
        elif isinstance(err, SyntaxError):
            line = err.lineno or 0
        else:
            for frame in traceback.extract_tb(err.__traceback__):
                if frame.filename == SCRIPT_FILENAME and frame.lineno:
                    line = frame.lineno
        lines = script.splitlines() if isinstance(script, str) else []
        error_line = lines[line - 1] if 0 < line <= len(lines) else ""
        return line, error_line


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"
