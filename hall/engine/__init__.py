"""The process engine: the only package of the hall that imports SpiffWorkflow."""

from hall.engine.runtime import (  # noqa: F401
    CompiledProcess,
    Engine,
    InstanceFailed,
    Outcome,
    ReadyTask,
    UserTaskSpec,
    compile_process,
    content_hash,
)
from hall.engine.sandbox import ScriptRefused  # noqa: F401
from hall.engine.services import OPERATORS  # noqa: F401
from hall.engine.validation import DiagramRefused, Problem  # noqa: F401
