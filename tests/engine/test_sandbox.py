"""The script sandbox: what it refuses, how it bounds run time, and how Spiff workflows run on it."""

from __future__ import annotations

import sys
import threading
import time
from datetime import date, datetime, timedelta
from decimal import Decimal
from types import FrameType
from typing import Any, Literal

import pytest
from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.spiff.parser.process import SpiffBpmnParser
from SpiffWorkflow.util.task import TaskState

from engine import sandbox
from engine.sandbox import (
    DENIED_NAMES,
    RestrictedScriptEngine,
    SandboxEnvironment,
    ScriptRejected,
    ScriptSyntaxError,
    ScriptTimeout,
    ServiceTaskNotSupported,
    check,
)


def rejection(source: str, mode: Literal["exec", "eval"] = "exec") -> ScriptRejected:
    with pytest.raises(ScriptRejected) as info:
        check(source, mode)
    return info.value


# ------------------------------------------------------------------------------------------ static refusals


def test_import_is_refused_with_its_line() -> None:
    exc = rejection("x = 1\nimport os\n")
    assert exc.line == 2
    assert exc.message == "imports are not allowed"
    assert str(exc) == "line 2: imports are not allowed"


def test_from_import_is_refused() -> None:
    exc = rejection("x = 1\ny = 2\nfrom os import path")
    assert str(exc) == "line 3: imports are not allowed"


def test_subclasses_escape_is_refused() -> None:
    exc = rejection("().__class__.__base__.__subclasses__()")
    assert "'__class__'" in str(exc)
    assert "not allowed" in str(exc)


@pytest.mark.parametrize(
    "source",
    ["x._y", "x = {}\ny = x._private", "f.__globals__", "(lambda: 0).__code__"],
)
def test_private_and_dunder_attributes_are_refused(source: str) -> None:
    exc = rejection(source)
    assert "attributes starting with '_' are private" in str(exc)
    assert exc.line == source.count("\n") + 1


def test_attribute_assignment_and_deletion_are_checked_too() -> None:
    assert "'_x'" in str(rejection("a = 1\nb.c._x = 2"))
    assert "'_x'" in str(rejection("del b._x"))


@pytest.mark.parametrize("source", ["__builtins__", "x = __name__", "__x = 1", "def f(__a):\n    return 1"])
def test_names_starting_with_double_underscore_are_refused(source: str) -> None:
    exc = rejection(source)
    assert "names starting with '__' are reserved" in str(exc)


def test_global_is_refused() -> None:
    exc = rejection("x = 1\ndef f():\n    global x\n    x = 2")
    assert str(exc) == "line 3: 'global' statements are not allowed"


def test_nonlocal_is_refused() -> None:
    exc = rejection("def f():\n    x = 1\n    def g():\n        nonlocal x\n    return g")
    assert str(exc) == "line 4: 'nonlocal' statements are not allowed"


@pytest.mark.parametrize("name", sorted(DENIED_NAMES))
def test_calling_denied_builtins_is_refused(name: str) -> None:
    exc = rejection(f"a = 1\nresult = {name}('x')")
    assert str(exc) == f"line 2: calling '{name}' is not allowed"


def test_every_builtin_named_in_the_brief_is_denied() -> None:
    brief = {
        "open", "eval", "exec", "compile", "__import__", "globals", "locals", "vars", "getattr", "setattr",
        "delattr", "input", "breakpoint", "exit", "quit", "help", "memoryview", "type", "object", "super",
        "classmethod", "staticmethod", "property",
    }  # fmt: skip
    assert brief <= DENIED_NAMES


def test_open_etc_passwd_is_refused_statically() -> None:
    exc = rejection("open('/etc/passwd')")
    assert str(exc) == "line 1: calling 'open' is not allowed"


def test_denied_builtins_are_not_even_defined_at_run_time() -> None:
    env = SandboxEnvironment()
    for name in ("open", "eval", "getattr", "type", "object", "print"):
        with pytest.raises(NameError):
            env.execute(f"f = {name}", {})


def test_task_data_may_use_a_denied_builtin_name_as_a_field() -> None:
    env = SandboxEnvironment()
    assert env.evaluate("type == 'business'", {"type": "business"}) is True


def test_decorating_with_denied_builtins_is_refused() -> None:
    exc = rejection("@property\ndef x(self):\n    return 1")
    assert str(exc) == "line 1: decorator 'property' is not allowed"


@pytest.mark.parametrize("source", [
    "class A:\n    pass",
    "class A(metaclass=M):\n    pass",
    "x = 1\nclass D(dict):\n    def items(self):\n        while True:\n            pass",
    "def f():\n    class Hidden:\n        def __eq__(self, other):\n            return True\n    return Hidden()",
])
def test_class_definitions_are_refused(source: str) -> None:
    # Their methods (items, __eq__, __hash__, __reduce__, __del__, properties) would run wherever the engine
    # compares, copies or saves task data, outside the time limit.
    exc = rejection(source)
    assert "class definitions are not allowed" in exc.message
    assert exc.line is not None and exc.line >= 1


def test_async_code_is_refused() -> None:
    assert "async functions are not allowed" in str(rejection("async def f():\n    pass"))


def test_format_on_a_variable_or_with_private_fields_is_refused() -> None:
    assert "only allowed on a string literal" in str(rejection("t = '{}'\nt.format(1)"))
    assert "only allowed on a string literal" in str(rejection("str.format('{0.__class__}', 1)"))
    assert "'__class__'" in str(rejection("'{0.__class__.__base__}'.format(1)"))
    assert "'__globals__'" in str(rejection("'{0:{1.__globals__}}'.format(1, f)"))
    check("'{0} {1[a]} {2.year}'.format(1, d, now)", "exec")


def test_f_strings_are_checked_like_code() -> None:
    assert "'__class__'" in str(rejection("s = f'{x.__class__}'"))


def test_frame_and_generator_internals_are_refused() -> None:
    exc = rejection("def g():\n    yield 1\nframe = g().gi_frame")
    assert str(exc) == "line 3: attribute 'gi_frame' is not allowed: it exposes interpreter internals"
    assert "'f_back'" in str(rejection("x = frame.f_back"))


def test_match_class_patterns_cannot_read_private_attributes() -> None:
    exc = rejection("match x:\n    case A(__class__=c):\n        pass")
    assert "'__class__'" in str(exc)


def test_except_clause_types_must_be_names() -> None:
    check("try:\n    pass\nexcept (ValueError, errors.Custom) as e:\n    pass", "exec")
    exc = rejection("try:\n    pass\nexcept f():\n    pass")
    assert str(exc) == "line 3: except clauses may only name exception classes"


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("x = 2 ** 100000", "exponent 100000 is too large"),
        ("x = 9 ** 9 ** 9", "exponent 387420489 is too large"),
        ("x = 2 ** 10 ** 10 ** 10", "line 1: exponent is too large (max 10000)"),
        ("x = (10 ** 10000) ** 10000", "constant power is too large"),
        ("x = 1 << 10 ** 6", "shift 1000000 is too large"),
        ("x = 2\nx **= 100000", "exponent 100000 is too large"),
        ("s = 'a' * 10 ** 9", "repeating a literal 1000000000 times is too large"),
        ("s = 10 ** 9 * [0]", "repeating a literal 1000000000 times is too large"),
        ("s = 'abc' * 1000 * 1000", "repeating a literal"),
    ],
)
def test_constant_memory_bombs_are_refused(source: str, expected: str) -> None:
    assert expected in str(rejection(source))


def test_moderate_constants_are_fine() -> None:
    check("x = 2 ** 64\ns = '-' * 40\ny = amount * 10 ** 9", "exec")


def test_syntax_errors_are_rejections_and_syntax_errors() -> None:
    exc = rejection("x = 1\ny = (")
    assert isinstance(exc, ScriptSyntaxError)
    assert isinstance(exc, SyntaxError)
    assert exc.line == 2
    assert str(exc).startswith("line 2: syntax error")


def test_overlong_and_deeply_nested_scripts_are_refused() -> None:
    assert "too long" in str(rejection("x = 1\n" * 50_000))
    assert "nested" in str(rejection("x = " + "-" * 50_000 + "1"))


def test_check_is_cached_and_tolerates_xml_indentation() -> None:
    assert check("amount > 100", "eval") is check("amount > 100", "eval")
    env = SandboxEnvironment()
    assert env.evaluate("\n    amount > 100\n  ", {"amount": 101}) is True
    context = {"x": 1}
    env.execute("\n    y = x + 1\n    z = y * 2\n", context)
    assert context == {"x": 1, "y": 2, "z": 4}


# ------------------------------------------------------------------------------------------------- runtime


def test_evaluate_sees_task_data_and_external_context() -> None:
    env = SandboxEnvironment()
    assert env.evaluate("amount > limit", {"amount": 150}, {"limit": 100}) is True
    assert env.evaluate("amount", {"amount": 1}, {"amount": 2}) == 1  # task data wins, as in Spiff
    assert env.evaluate("[a for a in items if a > threshold]", {"items": [1, 5, 9], "threshold": 4}) == [5, 9]


def test_execute_applies_assignments_and_removes_everything_that_is_not_data() -> None:
    env = SandboxEnvironment()
    context: dict[str, Any] = {"x": 3, "old": "gone"}
    script = (
        "def double(v):\n"
        "    return v * 2\n"
        "box = {'v': x}\n"
        "y = double(box['v'])\n"
        "helper = lambda v: v\n"
        "m = math\n"
        "d = datetime\n"
        "gen = (i for i in range(3))\n"
        "squares = [i * i for i in range(4)]\n"
        "del old\n"
    )
    assert env.execute(script, context) is True
    assert context == {"x": 3, "y": 6, "box": {"v": 3}, "squares": [0, 1, 4, 9]}


def test_execute_does_not_copy_globals_or_external_context_into_task_data() -> None:
    env = SandboxEnvironment(extra_globals={"VAT": Decimal("0.21")})
    context: dict[str, Any] = {"net": Decimal("100")}
    env.execute("gross = net * (1 + VAT)\nrate = VAT", context, {"customer": "c-1"})
    assert context == {"net": Decimal("100"), "gross": Decimal("121.00"), "rate": Decimal("0.21")}


def test_a_failing_script_leaves_task_data_bindings_alone() -> None:
    env = SandboxEnvironment()
    context = {"x": 1}
    with pytest.raises(ZeroDivisionError):
        env.execute("x = 2\ny = 1 / 0", context)
    assert context == {"x": 1}


def test_task_data_shadows_a_global_of_the_same_name() -> None:
    env = SandboxEnvironment()
    context = {"date": "2024-05-01"}
    env.execute("same = date == '2024-05-01'", context)
    assert context == {"date": "2024-05-01", "same": True}


def test_safe_helpers_are_available() -> None:
    env = SandboxEnvironment()
    context: dict[str, Any] = {}
    env.execute(
        "when = datetime(2024, 1, 1, tzinfo=timezone.utc) + timedelta(days=1)\n"
        "price = Decimal('1.10') * 3\n"
        "root = math.sqrt(16)\n"
        "n = len(sorted({3, 1, 2}))\n",
        context,
    )
    assert context["when"] == datetime.fromisoformat("2024-01-02T00:00:00+00:00")
    assert context["price"] == Decimal("3.30")
    assert context["root"] == 4.0
    assert context["n"] == 3


def test_math_helpers_are_read_only() -> None:
    with pytest.raises(AttributeError):
        SandboxEnvironment().execute("math.pi = 3", {})
    assert SandboxEnvironment().evaluate("math.pi", {}) > 3.14


def test_scripts_can_raise_and_catch_whitelisted_exceptions() -> None:
    env = SandboxEnvironment()
    context: dict[str, Any] = {}
    env.execute("try:\n    raise ValueError('bad')\nexcept ValueError as e:\n    msg = str(e)", context)
    assert context == {"msg": "bad"}
    with pytest.raises(KeyError):
        env.execute("raise KeyError('k')", {})


def test_iter_sentinel_form_and_huge_pow_are_refused_at_run_time() -> None:
    env = SandboxEnvironment()
    with pytest.raises(TypeError, match="exactly one argument"):
        env.evaluate("sum(1 for _ in iter(int, 1))", {})
    with pytest.raises(ValueError, match="exponent"):
        env.evaluate("pow(n, 10 ** 6)", {"n": 10})
    assert env.evaluate("pow(2, 10) + pow(2, 10 ** 6, 7)", {}) == 1024 + pow(2, 10**6, 7)


def test_infinite_loop_is_stopped_by_the_time_limit() -> None:
    env = SandboxEnvironment(time_limit=0.2)
    started = time.monotonic()
    with pytest.raises(ScriptTimeout, match="time limit of 0.2 s"):
        env.execute("while True:\n    pass", {})
    assert time.monotonic() - started < 2


@pytest.mark.parametrize(
    "script",
    [
        "while True: pass",
        "x = 0\nwhile True:\n    x += 1",
        "while True:\n    try:\n        while True:\n            pass\n    except Exception:\n        pass",
        "while True:\n    try:\n        while True:\n            pass\n    except:\n        pass",
        "try:\n    while True:\n        pass\nfinally:\n    while True:\n        pass",
        "def forever():\n    while True:\n        yield 1\ntotal = sum(forever())",
        "def f(n):\n    return f(n - 1) + f(n - 1) if n else 1\nf(60)",
        # a RecursionError raised inside the tracer makes CPython drop it; the except guard re-arms it
        "def f():\n    f()\ntry:\n    f()\nexcept RuntimeError:\n    pass\n"
        "for i in range(10 ** 6):\n    for j in range(10 ** 6):\n        pass",
    ],
)
def test_timeouts_cannot_be_swallowed_or_dodged(script: str) -> None:
    with pytest.raises(ScriptTimeout):
        SandboxEnvironment(time_limit=0.2).execute(script, {})


def test_expression_timeout() -> None:
    with pytest.raises(ScriptTimeout):
        SandboxEnvironment(time_limit=0.2).evaluate("any(i < 0 for i in range(10 ** 6) for j in range(10 ** 6))", {})


def test_time_limit_works_outside_the_main_thread() -> None:
    outcome: list[BaseException] = []

    def worker() -> None:
        try:
            SandboxEnvironment(time_limit=0.2).execute("while True:\n    pass", {})
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread for the assertion
            outcome.append(exc)

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join(timeout=10)
    assert not thread.is_alive()
    assert len(outcome) == 1
    assert isinstance(outcome[0], ScriptTimeout)


def test_previous_trace_function_is_restored() -> None:
    def outer_tracer(frame: FrameType, event: str, arg: Any) -> None:
        return None

    previous = sys.gettrace()
    sys.settrace(outer_tracer)
    try:
        env = SandboxEnvironment(time_limit=0.2)
        env.evaluate("1 + 1", {})
        assert sys.gettrace() is outer_tracer
        with pytest.raises(ScriptTimeout):
            env.execute("while True:\n    pass", {})
        assert sys.gettrace() is outer_tracer
        with pytest.raises(ScriptRejected):
            env.execute("import os", {})
        assert sys.gettrace() is outer_tracer
    finally:
        sys.settrace(previous)


def test_sandbox_environment_rejects_refused_scripts_before_running() -> None:
    env = SandboxEnvironment()
    context = {"x": 1}
    with pytest.raises(ScriptRejected, match="imports are not allowed"):
        env.execute("x = 2\nimport os", context)
    assert context == {"x": 1}
    with pytest.raises(ScriptRejected, match="'__class__'"):
        env.evaluate("x.__class__", context)


# ------------------------------------------------------------------------------------ Spiff integration

BPMN_NS = 'xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"'
XSI_NS = 'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'


def gateway_process(script: str, big: str = "y &gt; 5", small: str = "y &lt;= 5") -> bytes:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions {BPMN_NS} {XSI_NS} id="defs" targetNamespace="http://silverflow.test">
  <bpmn:process id="proc" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="calc" />
    <bpmn:scriptTask id="calc" name="Calculate">
      <bpmn:incoming>f1</bpmn:incoming>
      <bpmn:outgoing>f2</bpmn:outgoing>
      <bpmn:script>{script}</bpmn:script>
    </bpmn:scriptTask>
    <bpmn:sequenceFlow id="f2" sourceRef="calc" targetRef="gw" />
    <bpmn:exclusiveGateway id="gw">
      <bpmn:incoming>f2</bpmn:incoming>
      <bpmn:outgoing>to_big</bpmn:outgoing>
      <bpmn:outgoing>to_small</bpmn:outgoing>
    </bpmn:exclusiveGateway>
    <bpmn:sequenceFlow id="to_big" sourceRef="gw" targetRef="end_big">
      <bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">{big}</bpmn:conditionExpression>
    </bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="to_small" sourceRef="gw" targetRef="end_small">
      <bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">{small}</bpmn:conditionExpression>
    </bpmn:sequenceFlow>
    <bpmn:endEvent id="end_big"><bpmn:incoming>to_big</bpmn:incoming></bpmn:endEvent>
    <bpmn:endEvent id="end_small"><bpmn:incoming>to_small</bpmn:incoming></bpmn:endEvent>
  </bpmn:process>
</bpmn:definitions>
""".encode()


def start_workflow(
    xml: bytes, data: dict[str, Any], engine: RestrictedScriptEngine | None = None
) -> BpmnWorkflow:
    parser = SpiffBpmnParser()
    parser.add_bpmn_str(xml)
    workflow = BpmnWorkflow(parser.get_spec("proc"), script_engine=engine or RestrictedScriptEngine())
    workflow.get_tasks(spec_name="Start")[0].data.update(data)
    return workflow


def completed_ids(workflow: BpmnWorkflow) -> set[str]:
    return {task.task_spec.bpmn_id for task in workflow.get_tasks(state=TaskState.COMPLETED)}


@pytest.mark.parametrize(("x", "end", "not_end"), [(3, "end_big", "end_small"), (2, "end_small", "end_big")])
def test_workflow_runs_script_and_gateway_on_the_sandbox(x: int, end: str, not_end: str) -> None:
    workflow = start_workflow(gateway_process("y = x * 2"), {"x": x})
    workflow.do_engine_steps()
    assert workflow.is_completed()
    done = completed_ids(workflow)
    assert {"calc", "gw", end} <= done
    assert not_end not in done
    assert workflow.last_task is not None
    assert workflow.last_task.data["y"] == x * 2


def test_workflow_with_import_fails_with_a_clear_task_error() -> None:
    workflow = start_workflow(gateway_process("import os\ny = 1"), {"x": 3})
    with pytest.raises(WorkflowTaskException) as info:
        workflow.do_engine_steps()
    assert "imports are not allowed" in str(info.value)
    assert info.value.line_number == 1
    assert info.value.task.task_spec.bpmn_id == "calc"


def test_rejected_gateway_condition_names_the_reason() -> None:
    workflow = start_workflow(gateway_process("y = x", big="y.__class__", small="True"), {"x": 3})
    with pytest.raises(WorkflowTaskException) as info:
        workflow.do_engine_steps()
    assert "'__class__'" in str(info.value)
    assert "y.__class__" in str(info.value)


def test_workflow_script_timeout_surfaces_as_task_error() -> None:
    engine = RestrictedScriptEngine(SandboxEnvironment(time_limit=0.2))
    workflow = start_workflow(gateway_process("while True:\n    pass"), {"x": 3}, engine)
    with pytest.raises(WorkflowTaskException) as info:
        workflow.do_engine_steps()
    assert "time limit" in str(info.value)


def test_runtime_errors_report_the_script_line() -> None:
    workflow = start_workflow(gateway_process("y = 1\nz = missing + 1"), {"x": 3})
    with pytest.raises(WorkflowTaskException) as info:
        workflow.do_engine_steps()
    assert info.value.line_number == 2
    assert "NameError" in str(info.value)


def test_validate_keeps_syntax_errors_as_syntax_errors_for_dmn() -> None:
    engine = RestrictedScriptEngine()
    engine.validate("amount > 100")
    with pytest.raises(SyntaxError):
        engine.validate("> 100")
    with pytest.raises(ScriptRejected, match="imports|calling 'eval'"):
        engine.validate("eval('1')")


def test_call_service_is_refused_clearly() -> None:
    workflow = start_workflow(gateway_process("y = x"), {"x": 3})
    task = workflow.get_tasks(spec_name="calc")[0]
    engine = RestrictedScriptEngine()
    with pytest.raises(ServiceTaskNotSupported) as info:
        engine.call_service(task, operation_name="crm/create", operation_params={})
    assert isinstance(info.value, NotImplementedError)
    assert isinstance(info.value, WorkflowTaskException)
    assert "crm/create" in str(info.value)


@pytest.mark.parametrize(("expression", "expected"), [
    ("date.today() == today", True),
    ("datetime.now(timezone.utc).tzinfo == timezone.utc", True),
    ("datetime.now().date() == today", True),
    ("date.fromisoformat('2026-03-01') - timedelta(days=1)", date(2026, 2, 28)),
    ("datetime.fromisoformat('2026-03-01T06:00:00+01:00').astimezone(timezone.utc).hour", 5),
    ("datetime.strptime('01.03.2026', '%d.%m.%Y').date()", date(2026, 3, 1)),
    ("date(2026, 3, 1).strftime('%d.%m.%Y')", "01.03.2026"),
    ("date(2026, 3, 1).isoformat()", "2026-03-01"),
    ("datetime.fromtimestamp(0, timezone.utc).year", 1970),
    ("(date.today() + timedelta(days=14)) > today", True),
])
def test_the_date_and_time_api_works_in_scripts(expression: str, expected: object) -> None:
    """Some of these call back into Python's import machinery from C (date.today() imports ``time``)."""
    assert SandboxEnvironment().evaluate(expression, {"today": date.today()}) == expected


def test_date_today_works_in_a_script_task_too() -> None:
    context: dict[str, Any] = {}
    SandboxEnvironment().execute("due = date.today() + timedelta(days=30)\nyear = datetime.now().year", context)
    assert context == {"due": date.today() + timedelta(days=30), "year": datetime.now().year}


def test_the_import_hook_the_date_api_needs_does_not_open_imports() -> None:
    """C code may import ``time`` and ``_strptime`` for the date API; scripts still cannot import anything."""
    env = SandboxEnvironment()
    with pytest.raises(ScriptRejected):
        env.execute("__import__('os')", {})
    with pytest.raises(ScriptRejected):
        env.execute("b = __builtins__", {})
    with pytest.raises(NameError):
        env.evaluate("time.time()", {})
    with pytest.raises(NameError):
        env.evaluate("builtins", {})
    c_api_import = sandbox._BUILTINS["__import__"]  # what C code finds; scripts cannot name it
    assert c_api_import("time").time() > 0
    for refused in ("os", "sys", "builtins", "importlib"):
        with pytest.raises(ImportError):
            c_api_import(refused)


# ------------------------------------------------------------ escape and bypass corpus (issue 21, item 2)
# Each attempt must be refused before it runs (ScriptRejected), or bounded while it runs (timeout, memory or
# size error), or leave nothing behind in the task data that could run code later (outside the time limit,
# when the engine copies, compares or saves the data).

REFUSED_ATTEMPTS = {
    "dict subclass with endless items":
        "class D(dict):\n    def items(self):\n        while True:\n            pass\nd = D()",
    "endless __eq__": "class E:\n    def __eq__(self, o):\n        while True:\n            pass\ne = E()",
    "endless __hash__": "class H:\n    def __hash__(self):\n        while True:\n            pass\nh = {H(): 1}",
    "__len__ / __iter__": "class L(list):\n    def __len__(self):\n        return 10 ** 9\nl = L()",
    "__repr__ / __str__": "class R:\n    def __repr__(self):\n        while True:\n            pass\nr = [R()]",
    "__getstate__": "class G:\n    def __getstate__(self):\n        while True:\n            pass\ng = G()",
    "__reduce__": "class P:\n    def __reduce__(self):\n        return (print, ('x',))\np = P()",
    "__del__": "class Z:\n    def __del__(self):\n        while True:\n            pass\nz = [Z()]",
    "property": "class Q:\n    @property\n    def v(self):\n        while True:\n            pass\nq = Q()",
    "descriptor": "class Dsc:\n    def __get__(self, o, t):\n        while True:\n            pass\n",
    "class in a function": "def f():\n    class C:\n        pass\n    return C()\nc = [f()]",
    "type() to make a class": "T = type('T', (dict,), {})",
    "object subclass via object()": "o = object()",
    "subclasses walk": "x = ().__class__.__base__.__subclasses__()",
    "generator frame": "g = (i for i in [1])\nf = g.gi_frame",
    "format spec attribute": "s = '{0.__class__}'.format(1)",
    "computed width in a format spec": "s = '{0:{1}}'.format(1, 10 ** 9)",
    "huge width in an f-string": "s = f'{1:>1000000000}'",
    "computed width in an f-string": "w = 10 ** 9\ns = f'{1:>{w}}'",
    "literal repeat": "s = 'x' * 300_000_000",
    "constant list of 10**8": "l = [0] * 10 ** 8",
    "augmented repeat of a computed target": "d = {'a': 'x'}\nd[k()] *= 10 ** 9",
}


@pytest.mark.parametrize("source", REFUSED_ATTEMPTS.values(), ids=REFUSED_ATTEMPTS.keys())
def test_escape_attempts_are_refused_before_running(source: str) -> None:
    with pytest.raises(ScriptRejected):
        check(source, "exec")


BOUNDED_ATTEMPTS = {
    "computed string repeat": ("n = 300_000_000\ns = 'x' * n", sandbox.ScriptLimitError),
    "computed list of 10**8": ("n = 10 ** 8\nl = [0] * n", sandbox.ScriptLimitError),
    "augmented repeat": ("s = 'x'\nn = 10 ** 9\ns *= n", sandbox.ScriptLimitError),
    "repeated squaring": ("x = 3\nwhile True:\n    x = x * x", sandbox.ScriptLimitError),
    "variable power": ("b = 7\ne = 10 ** 7\nx = b ** e", sandbox.ScriptLimitError),
    "variable shift": ("n = 10 ** 9\nx = 1 << n", sandbox.ScriptLimitError),
    "sum over a huge range": ("x = sum(range(3 * 10 ** 9))", sandbox.ScriptLimitError),
    "list of a huge range": ("x = list(range(10 ** 8))", sandbox.ScriptLimitError),
    "ljust": ("n = 10 ** 9\ns = 'x'.ljust(n)", sandbox.ScriptLimitError),
    "unbound str.center": ("n = 10 ** 9\ns = str.center('x', n)", sandbox.ScriptLimitError),
    "zfill": ("n = 10 ** 9\ns = '1'.zfill(n)", sandbox.ScriptLimitError),
    "expandtabs": ("s = '\\t' * 100_000\nt = s.expandtabs(10 ** 4)", sandbox.ScriptLimitError),
    "replace growth": ("s = 'a' * 1_000_000\nt = s.replace('a', 'aaaa')", sandbox.ScriptLimitError),
    "join growth": ("s = 'a' * 1_000_000\nt = s.join(['b'] * 1000)", sandbox.ScriptLimitError),
    "format() width": ("w = '>1000000000'\ns = format(1, w)", sandbox.ScriptLimitError),
    "percent width": ("s = '%1000000000d' % 1", sandbox.ScriptLimitError),
    "percent star width": ("n = 10 ** 9\ns = '%*d' % (n, 1)", sandbox.ScriptLimitError),
    "quadratic list sum": ("l = [[1] * 1000] * 1000\nx = sum(l, [])", TypeError),
    "memory in a loop": ("a = []\nwhile True:\n    a.append('x' * 1_000_000)", sandbox.ScriptMemoryExceeded),
    "memory swallowed": (
        "a = []\nwhile True:\n    try:\n        a.append('y' * 1_000_000)\n    except Exception:\n        pass",
        sandbox.ScriptMemoryExceeded),
}


@pytest.mark.parametrize("source, error", BOUNDED_ATTEMPTS.values(), ids=BOUNDED_ATTEMPTS.keys())
def test_resource_attempts_are_bounded_while_running(source: str, error: type[Exception]) -> None:
    env = SandboxEnvironment(time_limit=5, memory_limit=64 << 20)
    began = time.monotonic()
    with pytest.raises(error):
        env.execute(source, {})
    assert time.monotonic() - began < 5


@pytest.mark.parametrize("source, variable, message", [
    ("g = [(i for i in range(3))]", "g", "a generator"),
    ("f = {'call': lambda: 1}", "f", "a function"),
    ("def h():\n    return 1\nhs = (h,)", "hs", "a function"),
    ("m = [math]", "m", "_MathFunctions"),
    ("x = {'n': float('nan')}", "x", "the number nan"),
    ("b = [b'bytes']", "b", "a bytes object"),
    ("k = {(1, 2): 'tuple key'}", "k", "tuple key"),
    ("a = []\na.append(a)", "a", "nested deeper"),
])
def test_non_data_left_in_variables_is_a_clear_error_naming_the_variable(
        source: str, variable: str, message: str) -> None:
    context: dict[str, Any] = {"keep": 1}
    with pytest.raises(sandbox.ScriptDataError) as info:
        SandboxEnvironment().execute(source, context)
    assert info.value.variable == variable
    assert f"'{variable}'" in str(info.value) and message in str(info.value)
    assert context == {"keep": 1}  # nothing written back


def test_script_results_are_plain_data_afterwards() -> None:
    context: dict[str, Any] = {"old": (1, 2)}
    SandboxEnvironment().execute(
        "t = (1, [2, (3,)])\ns = {3, 1, 2}\nd = {1: 'a', True: 'b', None: 'c'}\nr = range(3)\n"
        "when = date(2024, 1, 2)\nprice = Decimal('1.10')\nempty = ''", context)
    assert context == {"old": [1, 2], "t": [1, [2, [3]]], "s": [1, 2, 3], "d": {"1": "b", "null": "c"},
                       "r": [0, 1, 2], "when": date(2024, 1, 2), "price": Decimal("1.10"), "empty": ""}
    assert type(context["t"]) is list and type(context["d"]) is dict


def test_aliased_data_cannot_blow_up_the_conversion() -> None:
    # 1000 references to one list of 1000 items: tiny in memory, 10**6 items as data; the walk stops at the
    # budget instead of visiting every alias (and [a] * 10**6 of it would be 10**9).
    began = time.monotonic()
    with pytest.raises(sandbox.ScriptDataError, match="variable 'b' is larger than the limit of 1 MiB"):
        SandboxEnvironment().execute("a = [0] * 1000\nb = [a] * 1000\nc = [b] * 1000", {})
    assert time.monotonic() - began < 1


def test_size_limit_per_variable_and_per_task_data() -> None:
    env = SandboxEnvironment(max_variable_bytes=1000, max_data_bytes=5000)
    with pytest.raises(sandbox.ScriptDataError, match="variable 'big' is larger than the limit of 0.976562 KiB"):
        env.execute("big = 'x' * 2000", {})
    context: dict[str, Any] = {}
    env.execute("small = 'x' * 900", context)
    assert len(context["small"]) == 900
    with pytest.raises(sandbox.ScriptDataError, match="the task data"):
        env.execute("a = 'x' * 900\nb = 'x' * 900\nc = 'x' * 900\nd = 'x' * 900\ne = 'x' * 900\nf = 'y' * 900",
                    context)
    # data the script did not set (e.g. an upload of an earlier form) is held only to the task-data bound
    context = {"upload": "z" * 3000}
    env.execute("n = len(upload)", context)
    assert context["n"] == 3000


def test_default_size_limits_refuse_a_300_mb_value_quickly() -> None:
    began = time.monotonic()
    with pytest.raises(sandbox.ScriptDataError, match="variable 'v' is larger than the limit of 1 MiB"):
        SandboxEnvironment().execute("v = 'x' * 1_000_000 + 'y' * 100_000", {})
    with pytest.raises(sandbox.ScriptLimitError):
        SandboxEnvironment().execute("n = 300_000_000\nv = 'x' * n", {})
    assert time.monotonic() - began < 1


def test_expression_results_are_plain_data() -> None:
    env = SandboxEnvironment()
    assert env.evaluate("(1, 2)", {}) == [1, 2]
    with pytest.raises(sandbox.ScriptDataError, match="a generator"):
        env.evaluate("(i for i in range(10 ** 6) for j in range(10 ** 6))", {})
    with pytest.raises(sandbox.ScriptDataError, match="a function"):
        env.evaluate("lambda: 1", {})


def test_legit_arithmetic_still_works_through_the_checked_operators() -> None:
    context: dict[str, Any] = {"qty": 3, "price": Decimal("12.50"), "rows": [1, 2]}
    SandboxEnvironment().execute(
        "total = qty * price\nrows *= 2\nsquare = qty ** 2\nbits = 1 << 10\nrest = 17 % 5\n"
        "label = '%05.1f EUR' % 3.14159\nline = 'a'.ljust(5, '.') + '-'.join(['x', 'y'])\n"
        "fixed = 'a-b'.replace('-', '+')\nwhen = date(2024, 1, 31).replace(day=1)\n"
        "s = sum([Decimal('1.5'), Decimal('2')])\nf = f'{price:>10.2f}'\nn = len(range(10))", context)
    assert context["total"] == Decimal("37.50") and context["rows"] == [1, 2, 1, 2]
    assert (context["square"], context["bits"], context["rest"]) == (9, 1024, 2)
    assert context["label"] == "003.1 EUR" and context["line"] == "a....x-y" and context["fixed"] == "a+b"
    assert context["when"] == date(2024, 1, 1) and context["s"] == Decimal("3.5")
    assert context["f"] == "     12.50" and context["n"] == 10
