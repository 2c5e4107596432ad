"""Service-task operators the hall provides. A diagram naming any other operator is refused at deploy."""

from __future__ import annotations

from collections.abc import Callable

OPERATORS: dict[str, Callable[[dict, dict], object]] = {}


def operator(name: str):
    def register(func):
        OPERATORS[name] = func
        return func

    return register


@operator("hall.echo")
def _echo(params: dict, data: dict):
    """Returns its parameters: lets a diagram copy or compute values in a service task."""
    return dict(params)


def call_operator(name: str | None, params: dict, data: dict):
    if name not in OPERATORS:
        raise LookupError(f"服务任务的操作 {name!r} 不存在（no such service operator）")
    # Spiff hands parameters as {"name": {"type": ..., "value": expr-result}}.
    plain = {k: (v.get("value") if isinstance(v, dict) and "value" in v else v) for k, v in params.items()}
    return OPERATORS[name](plain, data)
