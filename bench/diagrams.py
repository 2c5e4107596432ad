"""Generated BPMN diagrams the benchmarks run: N sequential user tasks, optionally looping back."""

from __future__ import annotations


def sequence(process_id: str, steps: int, loop: bool = False) -> bytes:
    """`steps` sequential user tasks; with loop=True a gateway returns to the first task while `again` is true."""
    tasks, flows, prev = [], [], "start"
    for i in range(1, steps + 1):
        tasks.append(f'<bpmn:userTask id="t{i}" name="步骤{i}"/>')
        flows.append(f'<bpmn:sequenceFlow id="f{i}" sourceRef="{prev}" targetRef="t{i}"/>')
        prev = f"t{i}"
    extra = ""
    if loop:
        extra = '<bpmn:exclusiveGateway id="gw" default="fend"/>'
        flows += [f'<bpmn:sequenceFlow id="fg" sourceRef="{prev}" targetRef="gw"/>',
                  '<bpmn:sequenceFlow id="fback" sourceRef="gw" targetRef="t1">'
                  '<bpmn:conditionExpression>again</bpmn:conditionExpression></bpmn:sequenceFlow>',
                  '<bpmn:sequenceFlow id="fend" sourceRef="gw" targetRef="end"/>']
    else:
        flows.append(f'<bpmn:sequenceFlow id="fend" sourceRef="{prev}" targetRef="end"/>')
    return f'''<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="defs" targetNamespace="http://hall.bench">
  <bpmn:process id="{process_id}" name="基准流程{steps}" isExecutable="true">
    <bpmn:startEvent id="start"/>{''.join(tasks)}{extra}<bpmn:endEvent id="end"/>{''.join(flows)}
  </bpmn:process>
</bpmn:definitions>'''.encode()
