"""Compiled process versions, kept in memory by version id (versions are immutable)."""

from __future__ import annotations

import threading
from collections import OrderedDict

from flask import current_app

from hall.engine import CompiledProcess, Engine, compile_process

_lock = threading.Lock()
_cache: OrderedDict[int, CompiledProcess] = OrderedDict()
_MAX = 256


def engine() -> Engine:
    ext = current_app.extensions
    if "hall_engine" not in ext:
        cfg = current_app.config
        ext["hall_engine"] = Engine(cfg["SCRIPT_STEP_BUDGET"], cfg["SCRIPT_TIME_BUDGET"])
    return ext["hall_engine"]


def compiled(version) -> CompiledProcess:
    """The parsed spec of a version; parsed from its stored XML once per process."""
    hit = _cache.get(version.id)
    if hit is not None and hit.content_hash == version.content_hash:
        return hit
    files = {version.bpmn_filename: version.bpmn_xml.encode("utf-8")}
    files.update({name: xml.encode("utf-8") for name, xml in (version.dependencies or {}).items()})
    result = compile_process(files, version.forms or {}, max_bytes=10 * 1024 * 1024, main_file=version.bpmn_filename)
    remember(version.id, result)
    return result


def compiled_by_id(version_id: int, content_hash: str | None = None) -> CompiledProcess | None:
    hit = _cache.get(version_id)
    if hit is not None and (content_hash is None or hit.content_hash == content_hash):
        return hit
    return None


def remember(version_id: int, process: CompiledProcess) -> None:
    with _lock:
        _cache[version_id] = process
        _cache.move_to_end(version_id)
        while len(_cache) > _MAX:
            _cache.popitem(last=False)


def clear() -> None:
    with _lock:
        _cache.clear()
