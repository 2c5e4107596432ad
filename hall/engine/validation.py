"""Deploy-time checks: read BPMN safely and refuse what the engine would mishandle, naming the element.

Every refusal is a Problem(file, element, reason). The checks here run on the XML before SpiffWorkflow
parses it, because the engine either ignores these constructs silently (link events), fails only at run
time (unquoted timers, cycles without a gateway: RecursionError) or lacks them (complex gateways,
compensation, ad hoc subprocesses).
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass

from lxml import etree

BPMN = "http://www.omg.org/spec/BPMN/20100524/MODEL"
SPIFF = "http://spiffworkflow.org/bpmn/schema/1.0/core"
NS = {"bpmn": BPMN, "spiffworkflow": SPIFF}

GATEWAYS = {"exclusiveGateway", "inclusiveGateway", "parallelGateway", "eventBasedGateway", "complexGateway"}
CONDITIONAL_GATEWAYS = {"exclusiveGateway", "inclusiveGateway"}

# ISO 8601 values a modeler writes without quotes: durations, repeating intervals, dates.
_ISO_TIMER = re.compile(
    r"^(R\d*/)?(P(?!$)(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?"
    r"|\d{4}-\d{2}-\d{2}([T ][0-9:.]+(Z|[+-]\d{2}:?\d{2})?)?)"
    r"(/P(?!$)(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?)?$"
)


# "<!DOCTYPE" and "<!ENTITY" as they appear in the encodings an XML declaration may name.
_DTD_MARKERS = tuple(
    marker.encode(encoding) for marker in ("<!DOCTYPE", "<!ENTITY", "<!doctype")
    for encoding in ("utf-8", "utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be")
)


@dataclass
class Problem:
    file: str
    element: str
    reason: str

    def as_dict(self) -> dict:
        return asdict(self)


class DiagramRefused(Exception):
    """The diagram cannot be deployed; `problems` says where and why."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        first = problems[0]
        super().__init__(f"{first.file}: {first.element}: {first.reason}")


def _local(tag) -> str:
    return etree.QName(tag).localname if isinstance(tag, str) else ""


def parse_xml(content: bytes, filename: str, max_bytes: int) -> etree._Element:
    """Parse untrusted XML: no DTD entities, no network, bounded size."""
    if len(content) > max_bytes:
        raise DiagramRefused([Problem(filename, "", f"文件过大（{len(content)} 字节，上限 {max_bytes}）")])
    # Refuse any DTD before the parser sees it: entity bombs and external entities never get expanded or read.
    if any(marker in content for marker in _DTD_MARKERS):
        raise DiagramRefused([Problem(filename, "", "不允许 DTD 或实体声明（DTD and entities are not allowed）")])
    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False, huge_tree=False,
        remove_comments=True,
    )
    try:
        root = etree.fromstring(content, parser)
    except etree.XMLSyntaxError as err:
        raise DiagramRefused([Problem(filename, "", f"XML 格式错误：{err}")]) from None
    if root.getroottree().docinfo.internalDTD is not None:
        raise DiagramRefused([Problem(filename, "", "不允许 DTD 或实体声明（DTD and entities are not allowed）")])
    if _local(root.tag) != "definitions" or etree.QName(root.tag).namespace != BPMN:
        raise DiagramRefused([Problem(filename, "", "不是 BPMN 2.0 文件：根元素应为 bpmn:definitions")])
    return root


def normalise_timers(root: etree._Element) -> None:
    """Quote ISO 8601 timer values written bare (PT1H, R3/P1D, 2026-01-01): the engine evaluates them as Python."""
    for name in ("timeDuration", "timeDate", "timeCycle"):
        for node in root.iter(f"{{{BPMN}}}{name}"):
            text = (node.text or "").strip()
            if text and _ISO_TIMER.match(text):
                node.text = repr(text)


def _flows(process) -> tuple[dict, dict, dict]:
    """Sequence flows of one process (not nested subprocesses): outgoing/incoming by node id."""
    outgoing: dict[str, list] = {}
    incoming: dict[str, list] = {}
    nodes = {}
    for child in process:
        tag = _local(child.tag)
        if tag == "sequenceFlow":
            outgoing.setdefault(child.get("sourceRef"), []).append(child)
            incoming.setdefault(child.get("targetRef"), []).append(child)
        elif child.get("id") and tag not in ("laneSet", "documentation", "extensionElements", "ioSpecification",
                                              "dataObject", "dataObjectReference", "dataStoreReference",
                                              "textAnnotation", "association", "property"):
            nodes[child.get("id")] = child
    return nodes, outgoing, incoming


def _check_container(container, filename: str, problems: list[Problem], top_level: bool) -> None:
    nodes, outgoing, incoming = _flows(container)
    kind = _local(container.tag)
    starts = [n for n in nodes.values() if _local(n.tag) == "startEvent"]
    if not starts and kind != "adHocSubProcess":
        what = "流程" if top_level else "子流程"
        problems.append(Problem(filename, container.get("id", ""), f"{what}没有开始事件（no start event）"))

    for node_id, node in nodes.items():
        tag = _local(node.tag)
        outs = outgoing.get(node_id, [])
        if tag in CONDITIONAL_GATEWAYS and len(outs) > 1:
            default = node.get("default")
            for flow in outs:
                has_condition = flow.find(f"{{{BPMN}}}conditionExpression") is not None
                if not has_condition and flow.get("id") != default:
                    problems.append(Problem(
                        filename, flow.get("id", ""),
                        f"网关 {node_id} 的出口连线既无条件也不是默认连线（flow with no condition and no default）",
                    ))
        if tag in ("subProcess", "transaction"):
            _check_container(node, filename, problems, top_level=False)

    # A cycle through activities only (no gateway) makes the engine recurse without end.
    gateway_ids = {i for i, n in nodes.items() if _local(n.tag) in GATEWAYS}
    graph = {i: [f.get("targetRef") for f in outgoing.get(i, [])] for i in nodes}
    cycle = _cycle_without(graph, gateway_ids)
    if cycle:
        problems.append(Problem(
            filename, cycle[0],
            "存在不经过网关的循环：" + " → ".join(cycle + [cycle[0]]) + "（a cycle with no gateway）",
        ))


def _cycle_without(graph: dict[str, list], excluded: set[str]) -> list[str] | None:
    """A cycle in graph that avoids the excluded nodes, as a list of node ids, or None."""
    white, grey, black = 0, 1, 2
    colour = dict.fromkeys(graph, white)
    stack_path: list[str] = []

    def visit(start):
        stack = [(start, iter(graph.get(start, [])))]
        colour[start] = grey
        stack_path.append(start)
        while stack:
            node, children = stack[-1]
            for child in children:
                if child in excluded or child not in graph:
                    continue
                if colour[child] == grey:
                    return stack_path[stack_path.index(child):]
                if colour[child] == white:
                    colour[child] = grey
                    stack_path.append(child)
                    stack.append((child, iter(graph.get(child, []))))
                    break
            else:
                colour[node] = black
                stack_path.pop()
                stack.pop()
        return None

    for node in graph:
        if node not in excluded and colour[node] == white:
            found = visit(node)
            if found:
                return found
    return None


UNSUPPORTED = {
    "complexGateway": "不支持复杂网关（complex gateway is not supported）",
    "adHocSubProcess": "不支持特设子流程（ad hoc subprocess is not supported）",
    "linkEventDefinition": "不支持链接事件，引擎会静默忽略它（link events are ignored by the engine）",
    "compensateEventDefinition": "不支持补偿（compensation is not supported）",
}


def check_definitions(root: etree._Element, filename: str, operators: set[str]) -> list[Problem]:
    """Structural checks over one BPMN file; returns every problem found."""
    problems: list[Problem] = []
    for element in root.iter():
        tag = _local(element.tag)
        if tag in UNSUPPORTED:
            owner = element if element.get("id") and not tag.endswith("EventDefinition") else element.getparent()
            problems.append(Problem(filename, owner.get("id", "") if owner is not None else "", UNSUPPORTED[tag]))
        elif element.get("isForCompensation") == "true":
            problems.append(Problem(filename, element.get("id", ""), UNSUPPORTED["compensateEventDefinition"]))
        elif tag == "serviceTask":
            op = element.find("bpmn:extensionElements/spiffworkflow:serviceTaskOperator", NS)
            name = op.get("id") if op is not None else None
            if name not in operators:
                available = ", ".join(sorted(operators))
                reason = (f"服务任务的操作 {name!r} 不是大厅提供的操作" if name else "服务任务没有指定操作") + \
                         f"（service task with no operator the hall provides; available: {available}）"
                problems.append(Problem(filename, element.get("id", ""), reason))

    processes = root.findall("bpmn:process", NS)
    if not processes:
        problems.append(Problem(filename, root.get("id", ""), "文件中没有流程（no bpmn:process element）"))
    executable = [p for p in processes if p.get("isExecutable") == "true"]
    if processes and not executable:
        for process in processes:
            problems.append(Problem(
                filename, process.get("id", ""),
                "流程未标记为可执行（isExecutable 不是 true）——这是一张图，不是可运行的流程（not executable）",
            ))
    for process in executable:
        _check_container(process, filename, problems, top_level=True)
    return problems


def check_call_activities(roots: dict[str, etree._Element]) -> list[Problem]:
    """Every call activity must call a process that was uploaded with it."""
    known = {p.get("id") for root in roots.values() for p in root.findall("bpmn:process", NS)}
    problems = []
    for filename, root in roots.items():
        for call in root.iter(f"{{{BPMN}}}callActivity"):
            target = call.get("calledElement")
            if not target or target not in known:
                problems.append(Problem(
                    filename, call.get("id", ""),
                    f"调用活动引用的流程 {target!r} 不存在（unresolved call activity）",
                ))
    return problems


# -- a form's JSON Schema, refused by the meta-schema ------------------------------------------------------

JSON_TYPES = ("string", "number", "integer", "boolean", "object", "array", "null")
_TYPE_WORDS = {"string": "文本", "number": "数字", "integer": "整数", "boolean": "true 或 false", "object": "对象",
               "array": "列表", "null": "null"}


def schema_problem(err) -> str:
    """Where a form's schema breaks the JSON Schema meta-schema, and what is wrong there, in words an
    administrator reads (jsonschema's SchemaError speaks English and names no location)."""
    where = "/".join(str(part) for part in err.path) or "（根）"
    value = json.dumps(err.instance, ensure_ascii=False, default=str)
    if len(value) > 60:
        value = value[:57] + "…"
    if err.path and err.path[-1] == "type":
        why = "type 只能是 " + "、".join(JSON_TYPES) + " 之一，或它们的列表"
    elif err.validator == "type":
        expected = err.validator_value if isinstance(err.validator_value, list) else [err.validator_value]
        why = "应为" + "或".join(_TYPE_WORDS.get(t, str(t)) for t in expected)
    elif err.validator in ("minimum", "exclusiveMinimum"):
        why = f"不能小于 {err.validator_value}"
    elif err.validator == "uniqueItems":
        why = "列表中有重复项"
    elif err.validator == "format":
        why = f"格式应为 {err.validator_value}"
    else:  # anyOf, enum, const, pattern…: the meta-schema allows other values only
        why = "取值不符合 JSON Schema 规范"
    return f"{where} 处的 {value}：{why}"
