"""The script sandbox: every script, condition and expression of a diagram runs here.

RestrictedPython compiles the source (no imports, no dunder names or attributes, guarded item and
attribute access); a line-count and wall-clock budget, enforced by a per-thread trace function, stops
endless loops. Anything refused raises ScriptRefused, whose message names what was refused.
"""

from __future__ import annotations

import ast
import json
import math
import sys
import time
from datetime import UTC
from functools import lru_cache

from RestrictedPython import (
    compile_restricted_eval,
    compile_restricted_exec,
    limited_builtins,
    safe_builtins,
    utility_builtins,
)
from RestrictedPython.Eval import default_guarded_getitem, default_guarded_getiter
from RestrictedPython.Guards import (
    full_write_guard,
    guarded_iter_unpack_sequence,
    guarded_unpack_sequence,
    safer_getattr,
)
from RestrictedPython.transformer import RestrictingNodeTransformer
from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine
from SpiffWorkflow.bpmn.script_engine.python_environment import BasePythonScriptEngineEnvironment


class ScriptRefused(Exception):
    """A script broke a sandbox rule or its budget."""


# Attributes without a leading underscore that still reach types, frames or code objects, and the
# format methods whose replacement fields ({0.__class__}) read attributes behind the guard's back.
_BLOCKED_ATTRIBUTES = frozenset({
    "mro", "format", "format_map", "gi_frame", "gi_code", "gi_yieldfrom", "cr_frame", "cr_code", "cr_await",
    "ag_frame", "ag_code", "f_globals", "f_locals", "f_builtins", "f_back", "f_code", "tb_frame", "tb_next",
    "co_code", "func_globals",
})

# Largest sequence a script may build by repetition, and largest integer (in bits) by ** or <<.
MAX_SEQUENCE_ITEMS = 10_000_000
MAX_INT_BITS = 100_000


def _guarded_getattr(obj, name, default=None, getattr=getattr):
    if name.startswith("_") or name in _BLOCKED_ATTRIBUTES:
        raise ScriptRefused(f"不允许访问属性 {name!r}（sandbox: attribute {name!r} is not allowed）")
    return safer_getattr(obj, name, default, getattr)


def _too_big(what: str):
    return ScriptRefused(f"脚本试图创建过大的对象（{what}）（sandbox: allocation exceeds the size budget）")


def _guarded_mul(a, b):
    for seq, times in ((a, b), (b, a)):
        if isinstance(seq, (str, bytes, list, tuple, bytearray)) and isinstance(times, int) \
                and len(seq) * times > MAX_SEQUENCE_ITEMS:
            raise _too_big(f"{len(seq)} × {times}")
    return a * b


def _guarded_pow(a, b, *modulo):
    if isinstance(a, int) and isinstance(b, int) and not modulo and b > 0 and abs(a) > 1 \
            and a.bit_length() * b > MAX_INT_BITS:
        raise _too_big(f"{a} ** {b}")
    return pow(a, b, *modulo)


def _guarded_lshift(a, b):
    if isinstance(a, int) and isinstance(b, int) and a and a.bit_length() + b > MAX_INT_BITS:
        raise _too_big(f"{a} << {b}")
    return a << b


_BINOPS = {ast.Mult: "_mul_", ast.Pow: "_pow_", ast.LShift: "_lshift_"}
_GUARDED_BINOPS = {"_mul_": _guarded_mul, "_pow_": _guarded_pow, "_lshift_": _guarded_lshift}


class HallPolicy(RestrictingNodeTransformer):
    """RestrictedPython's policy, plus `*`, `**` and `<<` routed through size-checking helpers."""

    def visit_BinOp(self, node: ast.BinOp):
        node = self.node_contents_visit(node)
        helper = _BINOPS.get(type(node.op))
        if helper is None:
            return node
        call = ast.Call(func=ast.Name(helper, ast.Load()), args=[node.left, node.right], keywords=[])
        return ast.fix_missing_locations(ast.copy_location(call, node))


def _inplacevar(op, x, y):
    ops = {
        "+=": lambda a, b: a + b, "-=": lambda a, b: a - b, "*=": _guarded_mul,
        "/=": lambda a, b: a / b, "//=": lambda a, b: a // b, "%=": lambda a, b: a % b,
        "**=": _guarded_pow, "|=": lambda a, b: a | b, "&=": lambda a, b: a & b,
    }
    if op not in ops:
        raise ScriptRefused(f"operator {op} is not allowed")
    return ops[op](x, y)


def _blocked(name):
    def refuse(*args, **kwargs):
        raise ScriptRefused(f"脚本中不允许使用 {name}（sandbox: {name} is not allowed）")

    return refuse


def _build_builtins() -> dict:
    allowed = dict(safe_builtins)
    allowed.update(limited_builtins)
    allowed.update(utility_builtins)
    for extra in ("sum", "min", "max", "any", "all", "enumerate", "map", "filter", "reversed", "list",
                  "dict", "set", "frozenset", "tuple"):
        allowed[extra] = __builtins__[extra] if isinstance(__builtins__, dict) else getattr(__builtins__, extra)
    # Modules that utility_builtins exposes carry too much surface; scripts get plain helpers instead.
    for module_name in ("string", "random", "whrandom", "set", "math", "DateTime"):
        allowed.pop(module_name, None)
    for name in ("__import__", "open", "compile", "eval", "exec", "globals", "locals", "vars", "getattr",
                 "setattr", "delattr", "type", "input", "breakpoint", "memoryview"):
        allowed[name] = _blocked(name)
    return allowed


SAFE_BUILTINS = _build_builtins()


class Budget:
    """Counts traced opcodes of one script run and stops it past a step or time budget."""

    def __init__(self, steps: int, seconds: float):
        self.steps = steps
        self.deadline = time.monotonic() + seconds
        self.count = 0

    def trace(self, frame, event, arg):
        if frame.f_code.co_filename != "<script>":
            return None  # only the script's own frames are counted
        # Opcodes, not lines: a one-line loop (`while True: pass`) emits no further line events.
        frame.f_trace_opcodes = True
        return self._local

    def _local(self, frame, event, arg):
        if event == "opcode":
            self.count += 1
            if self.count > self.steps or (self.count % 1000 == 0 and time.monotonic() > self.deadline):
                raise ScriptRefused("脚本超出运行预算（可能是死循环）（sandbox: script exceeded its time budget）")
        return self._local


@lru_cache(maxsize=2048)
def _compile(source: str, mode: str):
    compiler = compile_restricted_eval if mode == "eval" else compile_restricted_exec
    result = compiler(source, filename="<script>", policy=HallPolicy)
    if result.errors:
        raise ScriptRefused("脚本被拒绝：" + "; ".join(result.errors))
    return result.code


class SandboxEnvironment(BasePythonScriptEngineEnvironment):
    """SpiffWorkflow's script environment, with RestrictedPython in place of eval/exec."""

    def __init__(self, helpers: dict | None = None, steps: int = 200_000, seconds: float = 1.0):
        super().__init__(helpers or {})
        self.steps = steps
        self.seconds = seconds

    def _globals(self, external_context):
        scope = {
            "__builtins__": SAFE_BUILTINS,
            "_getattr_": _guarded_getattr,
            "_getitem_": default_guarded_getitem,
            "_getiter_": default_guarded_getiter,
            "_write_": full_write_guard,
            "_iter_unpack_sequence_": guarded_iter_unpack_sequence,
            "_unpack_sequence_": guarded_unpack_sequence,
            "_inplacevar_": _inplacevar,
            **_GUARDED_BINOPS,
            "_print_": _blocked("print"),
            "__name__": "script",
            "__metaclass__": type,
        }
        scope.update(self.globals)
        scope.update(external_context or {})
        return scope

    def _run(self, code, scope, local_scope):
        budget = Budget(self.steps, self.seconds)
        previous = sys.gettrace()
        sys.settrace(budget.trace)
        try:
            if local_scope is None:
                return eval(code, scope)  # noqa: S307 - restricted bytecode from compile_restricted
            exec(code, scope, local_scope)  # noqa: S102 - restricted bytecode from compile_restricted
            return True
        finally:
            sys.settrace(previous)

    def evaluate(self, expression, context, external_context=None):
        code = _compile(expression.strip(), "eval")
        scope = self._globals(external_context)
        scope.update(context)
        return self._run(code, scope, None)

    def execute(self, script, context, external_context=None):
        code = _compile(script, "exec")
        scope = self._globals(external_context)
        # Task data are the script's variables; whatever it assigns becomes task data.
        local_scope = dict(context)
        self._run(code, scope, local_scope)
        for key in list(context):
            if key not in local_scope:
                del context[key]
        for key, value in local_scope.items():
            if callable(value) or key.startswith("_"):
                continue
            problem = unstorable(value)
            if problem is not None:
                raise ScriptRefused(f"脚本给 {key} 的值无法保存为流程数据：{problem}（sandbox: {key} cannot be kept "
                                    "as JSON task data）")
            context[key] = value
        return True

    def call_service(self, context, operation_name=None, operation_params=None, task_data=None):
        from hall.engine.services import call_operator

        # Operators see the task's data: Spiff hands it as the context (task_data stays None).
        return call_operator(operation_name, operation_params or {}, task_data if task_data is not None else context)


_SCALARS = (str, int, bool, type(None))


def unstorable(value) -> str | None:
    """Why *value* cannot be kept as task data, or None. Task data is stored as JSON: text, numbers, true and
    false, null, lists and dictionaries with text keys. NaN and infinity are not JSON numbers (they would be
    written as null), a set or any other object has no JSON form at all (the write would fail), and neither
    has a list or dictionary that contains itself. The same list held twice is fine (it is written twice)
    and is checked once."""
    stack, on_path, checked = [(value, False)], set(), set()
    while stack:
        item, leaving = stack.pop()
        if leaving:  # every item below this container is checked
            on_path.discard(id(item))
            checked.add(id(item))
            continue
        if isinstance(item, _SCALARS):
            continue
        if isinstance(item, float):
            if not math.isfinite(item):
                return "NaN 或无穷大不是有效的数值"
            continue
        if not isinstance(item, (dict, list, tuple)):
            return f"不支持 {type(item).__name__} 类型的值（只能是文字、数字、真假、空值、列表和字典）"
        if id(item) in on_path:
            return "数据引用了自身"
        if id(item) in checked:
            continue
        if isinstance(item, dict) and not all(isinstance(key, str) for key in item):
            return "字典的键只能是文字"
        on_path.add(id(item))
        stack.append((item, True))
        stack.extend((child, False) for child in (item.values() if isinstance(item, dict) else item))
    return None


class HallScriptEngine(PythonScriptEngine):
    """Spiff's engine bound to the sandbox; keeps the sandbox's own message on refusals."""

    def __init__(self, steps: int = 200_000, seconds: float = 1.0):
        super().__init__(environment=SandboxEnvironment(helpers=_helpers(), steps=steps, seconds=seconds))

    def call_service(self, task, **kwargs):
        # Spiff's own version refers to an undefined name on failure ("name 'script' is not defined"),
        # hiding the real error; this one reports it.
        try:
            return json.dumps(self.environment.call_service(task.data, **kwargs), ensure_ascii=False)
        except Exception as err:  # noqa: BLE001 - every failure becomes an instance error with its message
            raise WorkflowTaskException(f"{err.__class__.__name__}: {err}", task=task, exception=err) from err


def _helpers() -> dict:
    """The small allow-list of functions scripts and expressions may call."""
    from datetime import date, datetime, timedelta

    def now_iso() -> str:
        return datetime.now(UTC).isoformat()

    def today() -> str:
        return date.today().isoformat()

    def days_between(start: str, end: str) -> int:
        return (date.fromisoformat(str(end)[:10]) - date.fromisoformat(str(start)[:10])).days + 1

    def add_days(day: str, days: int) -> str:
        return (date.fromisoformat(str(day)[:10]) + timedelta(days=int(days))).isoformat()

    return {"now_iso": now_iso, "today": today, "days_between": days_between, "add_days": add_days}
