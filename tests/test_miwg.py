"""The BPMN MIWG conformance corpus: every reference diagram either deploys and starts, or is refused
with a 422 whose problems name an element — none gives a 500."""

from __future__ import annotations

import os
from io import BytesIO
from pathlib import Path

import pytest

NOT_EXECUTABLE = "not executable"


def _corpus_dir() -> Path:
    """HALL_MIWG_DIR, else ../shared/corpora/bpmn-miwg beside the clone."""
    env = os.environ.get("HALL_MIWG_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "corpora" / "bpmn-miwg"


CORPUS = _corpus_dir()
FILES = sorted(p.name for p in CORPUS.glob("*.bpmn")) if CORPUS.is_dir() else []


def test_corpus_is_present():
    """The corpus folder exists and holds the 21 reference diagrams (a missing corpus fails, never skips)."""
    assert CORPUS.is_dir(), f"BPMN MIWG corpus not found at {CORPUS} (set HALL_MIWG_DIR)"
    assert len(FILES) == 21, FILES


@pytest.mark.parametrize("name", FILES or ["<corpus missing>"])
def test_reference_diagram_deploys_and_starts_or_is_refused_by_element(api, ctx, name):
    """The diagram deploys and starts without a 500, or is refused with a 422 naming an element per problem."""
    path = CORPUS / name
    assert path.is_file(), f"missing corpus file {path}"
    content = path.read_bytes()
    from hall.org.demo import load_demo_organisation

    load_demo_organisation()
    api.login("admin")
    response = api.post("process-definitions", data={"file": [(BytesIO(content), name)]},
                        content_type="multipart/form-data")
    assert response.status_code in (200, 201, 422), (response.status_code, response.get_data(as_text=True)[:500])
    body = response.get_json()
    if response.status_code == 422:
        assert body["errors"], body
        for problem in body["errors"]:
            assert problem["file"] == name and problem["element"] and problem["reason"], problem
        if 'isExecutable="true"' not in content.decode("utf-8"):
            assert any(NOT_EXECUTABLE in p["reason"] for p in body["errors"]), body["errors"]
        return
    started = api.post("process-instances", {"definition": body["key"], "data": {}})
    assert started.status_code == 201, (started.status_code, started.get_json())
    instance = started.get_json()
    assert instance["state"] in ("running", "completed", "error"), instance
    if instance["state"] == "error":
        assert instance["error_message"], instance
