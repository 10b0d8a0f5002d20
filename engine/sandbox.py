"""Restricted evaluation of BPMN script tasks and gateway conditions.

Spiff's default ``PythonScriptEngine`` hands scripts to ``eval``/``exec`` with full builtins, and even an
emptied ``__builtins__`` is escapable through ``().__class__.__base__.__subclasses__()``.  So every
script is parsed and its AST validated *before* it is compiled (``check``), and it then runs against a
whitelist of builtins with a time limit.

Refused statically (``ScriptRejected``, one clear line naming the construct and its line):

* ``import`` / ``from ... import``, ``global``, ``nonlocal``, ``async``/``await``, and ``class``
  statements: a script class's methods (``items``, ``__eq__``, ``__hash__``, ``__reduce__``, ``__del__``,
  properties, descriptors) would run wherever the engine copies, compares or saves task data, outside the
  time limit; records are dicts;
* attributes starting with ``_`` (dunders and privates), attributes exposing interpreter internals
  (``gi_frame``, ``f_back``, ``f_globals``, ``tb_frame``, ...), and ``.format``/``.format_map`` unless called
  on a string literal whose fields do not reach such attributes (use f-strings, which are checked); format
  specs that are computed or whose width/precision exceeds ``MAX_FORMAT_WIDTH``;
* names starting with ``__``;
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
sequence by a constant beyond ``MAX_LITERAL_REPEAT`` items (``'a' * 10**9``) - all refused statically.  At run
time every ``*``, ``**``, ``<<`` and ``%`` goes through a helper that computes the result's size first
(sequence repetition up to ``MAX_ITEMS`` items, integers up to ``MAX_INT_BITS`` bits, %-format widths up to
``MAX_FORMAT_WIDTH``, no ``*`` widths), as do the growing string methods (``ljust``, ``rjust``, ``center``,
``zfill``, ``expandtabs``, ``replace``, ``join``); ``range`` holds at most ``MAX_ITEMS`` numbers (so
``sum(range(3*10**9))`` is refused instead of spinning in C), ``sum`` adds numbers only (no quadratic list
concatenation), ``format`` checks its spec, ``iter()`` takes one argument.  Memory: the tracer samples the
process's resident size (``/proc/self/statm``) every ``CHECK_EVERY * MEMORY_EVERY`` events and raises
``ScriptMemoryExceeded`` past ``MAX_SCRIPT_MEMORY`` of growth (256 MiB); like the timeout it cannot be swallowed.

What a script leaves behind: top-level functions, modules and generators are dropped (as in Spiff); then the
whole task data is converted to plain data (``_to_plain``: str/int/float/bool/None, lists and dicts of
these, Decimal, date/datetime/timedelta/UUID - exact types only, tuples and ranges become lists, sets
sorted lists) while the step runs, so nothing a script defined can run later outside the limit.  A value that is
not data (a function or generator inside a list, bytes, NaN, a cycle) fails the task with ``ScriptDataError``
naming the variable; a variable the script set may hold ``MAX_VARIABLE_BYTES`` (1 MiB), the whole task data
``MAX_DATA_BYTES`` (16 MiB, also the bound engine.instances puts on a saved state).  The conversion walks at most
that budget, so aliased or cyclic data cannot make it slow.  Expression results are converted the same way.

Residual risk (measured, not bounded): one C-level call still runs to completion before the tracer sees the
next event - but with the bounds above the largest single step left is about ``MAX_ITEMS`` items (tens of ms);
sorting or comparing a few large values, and ``'%s' % big`` style formatting of allowed sizes, each stay in that
range.  Memory is sampled, not capped: one allocation can overshoot ``MAX_SCRIPT_MEMORY`` by its own size before
the next sample, and the sample is process-wide (another thread's allocations count).  A hard limit would need
a separate process per script (fork + pipe round trip measured at ~0.5 ms for a small process, more for the
API server with its heap, and forking a threaded server is fragile); run workers under an OS memory limit
(cgroup / RLIMIT_AS) where scripts are not trusted.
"""

from __future__ import annotations

import _string
import ast
import builtins
import contextlib
import math
import os
import re
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
from uuid import UUID

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
MAX_ITEMS = 1_000_000
"""Largest sequence a single C-level operation may build: ``s * n``, ``range(n)``, ``s.ljust(n)``, joins."""
MAX_FORMAT_WIDTH = 10_000
MAX_INT_BITS = 1_000_000
CHECK_EVERY = 64
MEMORY_EVERY = 4
"""The resident memory is sampled every ``MEMORY_EVERY``-th deadline check."""
MAX_DEPTH = 100
_MAX_INT_DIGITS_BITS = 14_000  # ~4 200 decimal digits: CPython refuses to print longer ints (JSON save)


def _env_bytes(name: str, default: int) -> int:
    try:
        value = int(os.environ.get(name, "") or default)
    except ValueError:
        return default
    return value if value > 0 else default


MAX_VARIABLE_BYTES = _env_bytes("SILVERFLOW_SCRIPT_MAX_VARIABLE_BYTES", 1 << 20)
"""A variable a script sets or rebinds may hold at most this much (JSON bytes, estimated)."""
MAX_DATA_BYTES = _env_bytes("SILVERFLOW_MAX_INSTANCE_STATE_BYTES", 16 << 20)
"""All of a task's data (and the saved instance state, see engine.instances) may hold at most this much."""
MAX_SCRIPT_MEMORY = _env_bytes("SILVERFLOW_SCRIPT_MAX_MEMORY_BYTES", 256 << 20)
"""Growth of the process's resident memory one script or expression may cause."""
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


class ScriptMemoryExceeded(Exception):
    """A script grew the process's memory by more than the environment's memory limit."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(f"script used more than the memory limit of {_mib(limit)}")


class ScriptLimitError(ValueError):
    """A single operation would build a value beyond the sandbox's size bounds (refused before it runs)."""


class ScriptDataError(ValueError):
    """A variable a script left behind is not plain data or is too large; names the variable."""

    def __init__(self, message: str, variable: str | None = None) -> None:
        self.variable = variable
        super().__init__(message)


def _mib(n: float) -> str:
    return f"{n / 1048576:g} MiB" if n >= 1048576 else f"{n / 1024:g} KiB"


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
                problem = (_format_template_problem(spec) or "computed format specs are not allowed") \
                    if "{" in spec else _format_spec_problem(spec)
                if problem:
                    return f"format field '{{{field}}}': {problem}"
    except ValueError:
        return None  # a malformed template fails at run time without reading anything
    return None


_SPEC_NUMBERS = re.compile(r"\d+")


def _format_spec_problem(spec: str) -> str | None:
    """Why a format spec is unsafe: a width or precision so large that formatting allocates gigabytes in C."""
    for number in _SPEC_NUMBERS.findall(spec):
        if len(number) > 7 or int(number) > MAX_FORMAT_WIDTH:
            return f"format width or precision {number} is too large (max {MAX_FORMAT_WIDTH})"
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
        # Methods of a script class (__eq__, __hash__, items(), __reduce__, __del__, properties...) would run
        # whenever the engine compares, copies or saves task data - outside the time limit. Records are dicts.
        self._reject(f"class definitions are not allowed in scripts (class '{node.name}'); use a dict", node)

    def visit_FormattedValue(self, node: ast.FormattedValue) -> None:
        spec = node.format_spec
        if isinstance(spec, ast.JoinedStr):
            if any(not isinstance(part, ast.Constant) for part in spec.values):
                self._reject("computed format specs in f-strings are not allowed", node)
            problem = _format_spec_problem("".join(str(part.value) for part in spec.values))  # type: ignore
            if problem:
                self._reject(problem, node)
        self.visit(node.value)

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


_OPERATOR_HELPERS: dict[type[ast.operator], str] = {
    ast.Mult: "__sandbox_mul__", ast.Pow: "__sandbox_pow__", ast.LShift: "__sandbox_lshift__",
    ast.Mod: "__sandbox_mod__",
}
_GROWING_METHODS = frozenset({"ljust", "rjust", "center", "zfill", "expandtabs", "join", "replace"})
_METHOD_HELPER = "__sandbox_method__"


class _InsertGuards(ast.NodeTransformer):
    """Starts every while-loop body, except handler and finally block with a deadline check, and routes the
    operations that can build huge values in one C call (``*``, ``**``, ``<<``, ``%`` and the string methods
    that pad, join or replace) through helpers that check the size first."""

    def visit_BinOp(self, node: ast.BinOp) -> ast.AST:
        self.generic_visit(node)
        helper = _OPERATOR_HELPERS.get(type(node.op))
        if helper is None or (isinstance(node.left, ast.Constant) and isinstance(node.right, ast.Constant)
                              and not isinstance(node.op, ast.Mod)):
            return node  # constant operands were checked statically (but not %-format widths)
        call = ast.Call(ast.Name(helper, ast.Load()), [node.left, node.right], [])
        return ast.copy_location(call, node)

    def visit_AugAssign(self, node: ast.AugAssign) -> ast.AST:
        self.generic_visit(node)
        helper = _OPERATOR_HELPERS.get(type(node.op))
        if helper is None:
            return node
        target = node.target
        if isinstance(target, ast.Name):
            load: ast.expr = ast.Name(target.id, ast.Load())
        elif isinstance(target, ast.Subscript) and all(
            isinstance(part, ast.Name | ast.Constant) for part in (target.value, target.slice)
        ):
            load = ast.Subscript(target.value, target.slice, ast.Load())
        else:
            raise ScriptRejected(
                "this augmented assignment is not allowed; write it out (x = x * y)", getattr(node, "lineno", None))
        call = ast.Call(ast.Name(helper, ast.Load()), [load, node.value], [])
        return ast.copy_location(ast.Assign([target], call), node)

    def visit_Attribute(self, node: ast.Attribute) -> ast.AST:
        self.generic_visit(node)
        if node.attr in _GROWING_METHODS and isinstance(node.ctx, ast.Load):
            call = ast.Call(ast.Name(_METHOD_HELPER, ast.Load()), [node.value, ast.Constant(node.attr)], [])
            return ast.copy_location(call, node)
        return node

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


def _int_bits(value: Any) -> int:
    return abs(value).bit_length() if isinstance(value, int) else 0


def _pow(base: Any, exp: Any, mod: Any = None) -> Any:
    """``pow`` refusing integer powers beyond MAX_EXPONENT / MAX_INT_BITS without a modulus (C big-int work)."""
    if mod is None and isinstance(exp, int) and isinstance(base, int) and abs(base) > 1 and exp > 0:
        if exp > MAX_EXPONENT:
            raise ScriptLimitError(f"exponent {exp} is too large (max {MAX_EXPONENT})")
        if _int_bits(base) * exp > MAX_INT_BITS:
            raise ScriptLimitError(f"the power would have more than {MAX_INT_BITS} bits")
    return pow(base, exp, mod)


def _op_pow(base: Any, exp: Any) -> Any:
    return _pow(base, exp)


_SEQUENCES = (str, bytes, bytearray, list, tuple)


def _mul(left: Any, right: Any) -> Any:
    """``left * right``, refusing sequence repetitions beyond MAX_ITEMS and products beyond MAX_INT_BITS."""
    for sequence, count in ((left, right), (right, left)):
        if isinstance(sequence, _SEQUENCES) and isinstance(count, int) and len(sequence) * count > MAX_ITEMS:
            raise ScriptLimitError(
                f"repeating a sequence of {len(sequence)} items {count} times is too large (max {MAX_ITEMS} items)")
    if isinstance(left, int) and isinstance(right, int) and _int_bits(left) + _int_bits(right) > MAX_INT_BITS:
        raise ScriptLimitError(f"the product would have more than {MAX_INT_BITS} bits")
    return left * right


def _lshift(left: Any, right: Any) -> Any:
    if isinstance(left, int) and isinstance(right, int) and right > 0 and (
            right > MAX_EXPONENT or _int_bits(left) + right > MAX_INT_BITS):
        raise ScriptLimitError(f"shift {right} is too large (max {MAX_EXPONENT})")
    return left << right


_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d*)(?:\.(\*|\d*))?")


def _mod(left: Any, right: Any) -> Any:
    """``left % right``; for %-formatting of text, refuses '*' and widths/precisions beyond MAX_FORMAT_WIDTH."""
    if isinstance(left, str | bytes):
        text = left if isinstance(left, str) else left.decode("latin-1")
        for width, precision in _PERCENT_SPEC.findall(text):
            for number in (width, precision):
                if number == "*" or (number and (len(number) > 7 or int(number) > MAX_FORMAT_WIDTH)):
                    raise ScriptLimitError(f"%-format width or precision '{number}' is not allowed "
                                           f"(max {MAX_FORMAT_WIDTH})")
    return left % right


def _checked_method(receiver: Any, name: str, bound: Any) -> Any:
    """A wrapper of a growing str/bytes method that computes the result's size before calling it."""

    def call(*args: Any, **kwargs: Any) -> Any:
        size = len(receiver)
        if name in ("ljust", "rjust", "center", "zfill"):
            width = args[0] if args else kwargs.get("width", 0)
            size = width if isinstance(width, int) else 0
        elif name == "expandtabs":
            tabsize = args[0] if args else kwargs.get("tabsize", 8)
            size = len(receiver) * max(tabsize, 1) if isinstance(tabsize, int) else 0
        elif name == "replace" and len(args) >= 2 and isinstance(args[0], str | bytes):
            old, new = args[0], args[1]
            count = receiver.count(old) if old else len(receiver) + 1
            limit = args[2] if len(args) > 2 else kwargs.get("count", -1)
            if isinstance(limit, int) and limit >= 0:
                count = min(count, limit)
            size = len(receiver) + count * max(len(new) - len(old), 0) if isinstance(new, str | bytes) else 0
        elif name == "join" and args:
            items = list(args[0])
            if len(items) > MAX_ITEMS:
                raise ScriptLimitError(f"join of {len(items)} items is too large (max {MAX_ITEMS} items)")
            size = sum(len(item) for item in items if isinstance(item, str | bytes)) + len(receiver) * len(items)
            args = (items, *args[1:])
        if size > MAX_ITEMS:
            raise ScriptLimitError(f"'{name}' would build a text of {size} characters (max {MAX_ITEMS})")
        return bound(*args, **kwargs)

    return call


def _method(receiver: Any, name: str) -> Any:
    """``receiver.name`` for the growing string methods (``_GROWING_METHODS``), size-checked on str/bytes."""
    bound = getattr(receiver, name)
    if isinstance(receiver, str | bytes | bytearray):
        return _checked_method(receiver, name, bound)
    if receiver in (str, bytes):  # the unbound form: str.ljust(text, width)
        return lambda self, *args, **kwargs: _method(self, name)(*args, **kwargs)
    return bound


def _range(*args: Any) -> range:
    """``range`` of at most MAX_ITEMS numbers: ``sum(range(10**12))`` or ``list(range(10**9))`` run in C."""
    result = range(*args)
    try:
        length = len(result)
    except OverflowError:
        length = MAX_ITEMS + 1
    if length > MAX_ITEMS:
        raise ScriptLimitError(f"range of {length if length <= sys.maxsize else 'too many'} numbers is too "
                               f"large (max {MAX_ITEMS})")
    return result


def _sum(iterable: Any, start: Any = 0) -> Any:
    """``sum`` of numbers only: summing lists or tuples copies quadratically inside C."""
    if not isinstance(start, int | float | Decimal | timedelta):
        raise TypeError("sum() adds numbers only; build lists with a comprehension")
    return sum(iterable, start)


def _format(value: Any, spec: Any = "") -> str:
    if isinstance(spec, str):
        problem = _format_spec_problem(spec)
        if problem:
            raise ScriptLimitError(problem)
    return format(value, spec)


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
    range=_range,
    sum=_sum,
    format=_format,
    __sandbox_mul__=_mul,
    __sandbox_pow__=_op_pow,
    __sandbox_lshift__=_lshift,
    __sandbox_mod__=_mod,
    __sandbox_method__=_method,
    __import__=_c_api_import,  # for the C date/time API only; scripts cannot name it ('__' rule)
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


_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
_statm: tuple[int, int] | None = None  # (pid, fd) of /proc/self/statm, reopened after a fork


def _resident_bytes() -> int | None:
    """The process's resident memory (Linux ``/proc/self/statm``, ~1.5 us), None where unavailable."""
    global _statm
    pid = os.getpid()
    if _statm is None or _statm[0] != pid:
        try:
            _statm = (pid, os.open("/proc/self/statm", os.O_RDONLY))
        except OSError:
            return None
    try:
        return int(os.pread(_statm[1], 64, 0).split()[1]) * _PAGE_SIZE
    except (OSError, ValueError, IndexError):
        return None


class _Run:
    """Deadline and memory bookkeeping for one evaluate/execute call; its bound methods are the tracer and
    guard. Memory is the growth of the process's resident size since the call began, sampled every
    ``CHECK_EVERY * MEMORY_EVERY`` trace events (a concurrent request in another thread counts too)."""

    __slots__ = ("deadline", "time_limit", "events", "tracer", "local_tracer", "memory_limit", "memory_base",
                 "checks", "memory_exceeded")

    def __init__(self, time_limit: float, memory_limit: int | None = None) -> None:
        self.time_limit = time_limit
        self.deadline = time.monotonic() + time_limit
        self.events = 0
        self.checks = 0
        self.memory_limit = memory_limit
        self.memory_base = _resident_bytes() if memory_limit else None
        self.memory_exceeded = False
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
            self.check()
        return self.local_tracer

    def check(self) -> None:
        if time.monotonic() > self.deadline:
            raise ScriptTimeout(self.time_limit)
        if self.memory_base is not None and self.memory_limit:
            self.checks += 1
            if self.memory_exceeded or self.checks % MEMORY_EVERY == 0:
                resident = _resident_bytes()
                if self.memory_exceeded or (resident is not None and resident - self.memory_base > self.memory_limit):
                    self.memory_exceeded = True
                    raise ScriptMemoryExceeded(self.memory_limit)

    def guard(self) -> None:
        """Compiled into while bodies, except handlers and finally blocks of every script."""
        if time.monotonic() > self.deadline:
            raise ScriptTimeout(self.time_limit)
        if self.memory_exceeded:
            raise ScriptMemoryExceeded(self.memory_limit or 0)
        if sys.gettrace() is not self.tracer:
            # CPython drops a trace function that raised, e.g. a RecursionError hit inside it, which the
            # script may then have caught: re-arm, including for the frame that is running the handler.
            sys.settrace(self.tracer)
            sys._getframe(1).f_trace = self.local_tracer


_JSON_KEYS = {True: "true", False: "false", None: "null"}


class _Budget:
    """Approximate JSON bytes a conversion may still produce; it stops a walk over aliased or cyclic data."""

    __slots__ = ("left", "limit", "what")

    def __init__(self, limit: int, what: str) -> None:
        self.left = limit
        self.limit = limit
        self.what = what

    def take(self, amount: int, name: str) -> None:
        self.left -= amount
        if self.left < 0:
            raise ScriptDataError(f"{self.what.format(name=name)} is larger than the limit of {_mib(self.limit)}",
                                  name)


def _kind(value: Any) -> str:
    if isinstance(value, types.FunctionType | types.LambdaType | types.BuiltinFunctionType | types.MethodType):
        return "a function"
    if isinstance(value, types.GeneratorType):
        return "a generator"
    if isinstance(value, float | Decimal):
        return f"the number {value}"
    return f"a {type(value).__name__} object"


def _to_plain(value: Any, name: str, budgets: tuple[_Budget, ...], depth: int = 0) -> Any:
    """``value`` as plain data: str/int/float/bool/None, lists and dicts of these, Decimal, date/datetime/
    timedelta/UUID. Exact types only, so no method a script could supply runs; tuples become lists and sets
    sorted lists. Anything else, NaN/Infinity, a too deep nesting or a value over budget: ScriptDataError."""
    kind = type(value)
    cost = 2
    scalar = True
    if kind is str:
        cost += len(value)
    elif kind is int:
        if value.bit_length() > _MAX_INT_DIGITS_BITS:
            raise ScriptDataError(f"variable '{name}' holds a number too large to store", name)
        cost += value.bit_length() // 3
    elif kind is float:
        if not math.isfinite(value):
            raise ScriptDataError(f"variable '{name}' holds {_kind(value)}, which JSON cannot hold", name)
        cost += 22
    elif kind is Decimal:
        if not value.is_finite():
            raise ScriptDataError(f"variable '{name}' holds {_kind(value)}, which JSON cannot hold", name)
        cost += 40
    elif value is None or kind in (bool, date, timedelta, UUID):
        cost += 30
    elif kind is datetime:
        if value.tzinfo is not None and type(value.tzinfo) is not timezone:
            raise ScriptDataError(f"variable '{name}' holds a date with an unsupported time zone", name)
        cost += 32
    else:
        scalar = False
    for budget in budgets:
        budget.take(cost, name)
    if scalar:
        return value
    if depth > MAX_DEPTH:
        raise ScriptDataError(f"variable '{name}' is nested deeper than {MAX_DEPTH} levels", name)
    if kind is list or kind is tuple:
        return [_to_plain(item, name, budgets, depth + 1) for item in value]
    if kind is set or kind is frozenset:
        items = [_to_plain(item, name, budgets, depth + 1) for item in value]
        with contextlib.suppress(TypeError):
            items.sort()
        return items
    if kind is range:
        if len(value) > MAX_ITEMS:
            raise ScriptDataError(f"variable '{name}' holds a range too large to store", name)
        return [_to_plain(item, name, budgets, depth + 1) for item in value]
    if kind is dict:
        result: dict[str, Any] = {}
        for key, item in value.items():
            key_kind = type(key)
            if key_kind is not str:
                if key_kind is bool or key is None:
                    key = _JSON_KEYS[key]
                elif key_kind is int or (key_kind is float and math.isfinite(key)):
                    key = str(key)
                else:
                    raise ScriptDataError(f"variable '{name}' holds a dict with a {key_kind.__name__} key; "
                                          "keys must be text", name)
            for budget in budgets:
                budget.take(len(key) + 4, name)
            result[key] = _to_plain(item, name, budgets, depth + 1)
        return result
    raise ScriptDataError(f"variable '{name}' holds {_kind(value)}, which a process variable cannot hold; store "
                          "text, numbers, true/false, dates, lists or dicts of these", name)


class SandboxEnvironment(BasePythonScriptEngineEnvironment):
    """Spiff script environment that validates, restricts and time-limits every script and expression."""

    def __init__(self, time_limit: float = 2.0, extra_globals: dict[str, object] | None = None, *,
                 max_variable_bytes: int | None = None, max_data_bytes: int | None = None,
                 memory_limit: int | None = None) -> None:
        if time_limit <= 0:
            raise ValueError("time_limit must be positive")
        base = dict(_DEFAULT_GLOBALS)
        base.update(extra_globals or {})
        super().__init__(environment_globals=base)
        self.time_limit = time_limit
        self.max_variable_bytes = max_variable_bytes or MAX_VARIABLE_BYTES
        self.max_data_bytes = max_data_bytes or MAX_DATA_BYTES
        self.memory_limit = MAX_SCRIPT_MEMORY if memory_limit is None else memory_limit
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
        run = _Run(self.time_limit, self.memory_limit)
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
        """Value of an expression over task data (then external_context, then the environment globals),
        as plain data: a generator or function an expression returns would run script code, unbounded,
        wherever the engine later iterates or calls it."""
        value = self._run(check(expression, "eval"), self._namespace(context, external_context))
        if type(value) in (bool, str, int, type(None)):
            return value
        return _to_plain(value, "(expression result)", (_Budget(self.max_data_bytes, "the expression result"),))

    def execute(
        self, script: str, context: dict[str, Any], external_context: dict[str, Any] | None = None
    ) -> bool:
        """Run a script and apply its assignments and deletions to ``context`` (the task data).

        Names are only written back when the script succeeds, so a failed task is retried on unchanged
        bindings (objects the script mutated in place stay mutated).  Functions, modules, generators and
        untouched globals at the top level are dropped; then the whole task data is converted to plain data
        (``_to_plain``): nothing a script defined survives to run later outside the time limit, a value that
        is not data fails the task naming the variable, and a variable the script set may hold at most
        ``max_variable_bytes``, the task data ``max_data_bytes``.
        """
        external = external_context or {}
        before = dict(context)
        namespace = self._namespace(context, external)
        self._run(check(script, "exec"), namespace)
        result: dict[str, Any] = {}
        for key, value in namespace.items():
            if key in _RESERVED_KEYS:
                continue
            if key not in context:
                injected = external[key] if key in external else self._base.get(key, _MISSING)
                if value is injected:
                    continue
            if not (_is_non_data(value) or id(value) in self._helper_ids):
                result[key] = value
        total = _Budget(self.max_data_bytes, "the task data (variable '{name}' and the others)")
        plain: dict[str, Any] = {}
        for key, value in result.items():
            budgets = (total,) if before.get(key, _MISSING) is value else (
                total, _Budget(self.max_variable_bytes, "variable '{name}'"))
            plain[key] = _to_plain(value, key, budgets)
        context.clear()
        context.update(plain)
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
