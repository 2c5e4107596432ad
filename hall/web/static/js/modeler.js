/* The BPMN modeler page (bpmn-js Modeler): new / open, a small properties panel, 校验 (validate) with the
   server's problems shown on their elements, 部署 (deploy), the version list and download.
   Settings come from data-* attributes of #modeler (no inline script, so the page's CSP holds). */
(function () {
  'use strict';

  var SPIFF = 'http://spiffworkflow.org/bpmn/schema/1.0/core';
  // Teaches bpmn-moddle the spiffworkflow:properties / spiffworkflow:property extension elements.
  var SPIFF_DESCRIPTOR = {
    name: 'SpiffWorkflow', uri: SPIFF, prefix: 'spiffworkflow', xml: { tagAlias: 'lowerCase' },
    types: [
      { name: 'Properties', superClass: ['Element'],
        properties: [{ name: 'properties', type: 'Property', isMany: true }] },
      { name: 'Property', superClass: ['Element'],
        properties: [{ name: 'name', type: 'String', isAttr: true }, { name: 'value', type: 'String', isAttr: true }] }
    ]
  };

  var root = document.getElementById('modeler');
  var data = function (name) { return root.getAttribute('data-' + name) || ''; };
  var statusBox = document.getElementById('modeler-status');
  var problemList = document.getElementById('problems');
  var versionList = document.getElementById('versions');

  var modeler = new window.BpmnJS({
    container: '#canvas',
    moddleExtensions: { spiffworkflow: SPIFF_DESCRIPTOR }
  });
  window.hallModeler = modeler; // for tests and the browser console

  function newDiagram() {
    var id = 'Process_' + Math.random().toString(36).slice(2, 8);
    return '<?xml version="1.0" encoding="UTF-8"?>\n' +
      '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" ' +
      'xmlns:bpmndi="http://www.omg.org/spec/BPMN/20100524/DI" xmlns:dc="http://www.omg.org/spec/DD/20100524/DC" ' +
      'xmlns:spiffworkflow="' + SPIFF + '" id="Definitions_' + id + '" targetNamespace="http://bpmn.io/schema/bpmn">\n' +
      '  <bpmn:process id="' + id + '" name="新流程" isExecutable="true">\n' +
      '    <bpmn:startEvent id="StartEvent_1" name="开始"/>\n' +
      '  </bpmn:process>\n' +
      '  <bpmndi:BPMNDiagram id="BPMNDiagram_1"><bpmndi:BPMNPlane id="BPMNPlane_1" bpmnElement="' + id + '">\n' +
      '    <bpmndi:BPMNShape id="StartEvent_1_di" bpmnElement="StartEvent_1">' +
      '<dc:Bounds x="180" y="160" width="36" height="36"/></bpmndi:BPMNShape>\n' +
      '  </bpmndi:BPMNPlane></bpmndi:BPMNDiagram>\n' +
      '</bpmn:definitions>\n';
  }

  function say(text, kind) {
    statusBox.textContent = text;
    statusBox.className = 'status' + (kind ? ' status-' + kind : '');
  }

  function processElement() {
    return modeler.get('canvas').getRootElement();
  }

  function processKey() {
    var bo = processElement().businessObject;
    return bo.processRef ? bo.processRef.id : bo.id; // a collaboration's root points at its process
  }

  // -- extension properties ------------------------------------------------------------------------

  function spiffProps(bo) {
    var ext = bo.extensionElements;
    if (!ext) { return null; }
    return (ext.values || []).filter(function (v) { return v.$type === 'spiffworkflow:Properties'; })[0] || null;
  }

  function getProp(bo, name) {
    var props = spiffProps(bo);
    var found = props && (props.properties || []).filter(function (p) { return p.name === name; })[0];
    return found ? found.value || '' : '';
  }

  function setProp(element, name, value) {
    var moddle = modeler.get('moddle');
    var modeling = modeler.get('modeling');
    var bo = element.businessObject;
    var ext = bo.extensionElements || moddle.create('bpmn:ExtensionElements', { values: [] });
    var props = spiffProps(bo);
    if (!props) {
      props = moddle.create('spiffworkflow:Properties', { properties: [] });
      props.$parent = ext;
      ext.get('values').push(props);
    }
    var list = props.get('properties');
    var existing = list.filter(function (p) { return p.name === name; })[0];
    if (value) {
      if (existing) { existing.value = value; } else {
        var prop = moddle.create('spiffworkflow:Property', { name: name, value: value });
        prop.$parent = props;
        list.push(prop);
      }
    } else if (existing) {
      list.splice(list.indexOf(existing), 1);
    }
    ext.$parent = bo;
    modeling.updateProperties(element, { extensionElements: ext });
  }

  // -- the properties panel ------------------------------------------------------------------------

  var selected = null;
  var fields = {
    id: document.getElementById('prop-id'), name: document.getElementById('prop-name'),
    form: document.getElementById('prop-form'), groups: document.getElementById('prop-groups'),
    category: document.getElementById('prop-category')
  };
  var KINDS = { 'bpmn:Process': '流程', 'bpmn:Collaboration': '流程', 'bpmn:UserTask': '用户任务',
    'bpmn:StartEvent': '开始事件', 'bpmn:EndEvent': '结束事件', 'bpmn:Lane': '泳道（名称填角色编码）',
    'bpmn:Participant': '池', 'bpmn:ExclusiveGateway': '排他网关', 'bpmn:SequenceFlow': '连线' };

  function showProps(element) {
    selected = element || processElement();
    var bo = selected.businessObject;
    if (!bo) { selected = null; return; } // before a diagram is imported the root is an implicit one
    var isProcess = selected === processElement();
    var target = isProcess && bo.processRef ? bo.processRef : bo;
    document.getElementById('props-kind').textContent = KINDS[bo.$type] || bo.$type.replace('bpmn:', '');
    fields.id.value = target.id || '';
    fields.name.value = target.name || '';
    var isTask = bo.$type === 'bpmn:UserTask';
    document.getElementById('props-task').hidden = !isTask;
    document.getElementById('props-process').hidden = !isProcess;
    if (isTask) {
      fields.form.value = getProp(bo, 'formJsonSchemaFilename');
      fields.groups.value = getProp(bo, 'candidateGroups');
    }
    if (isProcess) { fields.category.value = getProp(target, 'category'); }
  }

  function onChange(input, apply) {
    input.addEventListener('change', function () {
      if (!selected) { return; }
      try { apply(input.value.trim()); } catch (err) { say('无法修改：' + err.message, 'error'); }
      showProps(selected);
    });
  }

  onChange(fields.id, function (value) {
    if (!value || !/^[A-Za-z_][\w.-]*$/.test(value)) { throw new Error('ID 须以字母开头，只含字母、数字、下划线'); }
    var bo = selected.businessObject;
    if (selected === processElement() && bo.processRef) { bo.processRef.id = value; return; }
    modeler.get('modeling').updateProperties(selected, { id: value });
  });
  onChange(fields.name, function (value) {
    var bo = selected.businessObject;
    if (selected === processElement()) {
      (bo.processRef || bo).name = value;
      return;
    }
    modeler.get('modeling').updateProperties(selected, { name: value || undefined });
  });
  onChange(fields.form, function (value) { setProp(selected, 'formJsonSchemaFilename', value); });
  onChange(fields.groups, function (value) { setProp(selected, 'candidateGroups', value); });
  onChange(fields.category, function (value) { setProp(selected, 'category', value); });

  modeler.on('selection.changed', function (event) {
    showProps(event.newSelection.length === 1 ? event.newSelection[0] : null);
  });
  modeler.on('element.changed', function (event) {
    if (selected && event.element === selected && document.activeElement.tagName !== 'INPUT') { showProps(selected); }
  });

  // -- problems ------------------------------------------------------------------------------------

  var marked = [];

  function clearProblems() {
    var canvas = modeler.get('canvas');
    marked.forEach(function (id) { if (modeler.get('elementRegistry').get(id)) { canvas.removeMarker(id, 'hall-problem'); } });
    marked = [];
    modeler.get('overlays').remove({ type: 'hall-problem' });
    problemList.innerHTML = '';
  }

  function showProblems(problems) {
    clearProblems();
    var registry = modeler.get('elementRegistry');
    var canvas = modeler.get('canvas');
    if (!problems.length) {
      var ok = document.createElement('li');
      ok.className = 'ok';
      ok.textContent = '校验通过，可以部署';
      problemList.appendChild(ok);
      return;
    }
    problems.forEach(function (problem) {
      var element = problem.element ? registry.get(problem.element) : null;
      var item = document.createElement('li');
      var button = document.createElement('button');
      button.type = 'button';
      button.className = 'problem';
      button.setAttribute('data-element', problem.element || '');
      button.textContent = (problem.element ? problem.element + '：' : '') + problem.reason;
      item.appendChild(button);
      problemList.appendChild(item);
      if (element && element !== processElement()) {
        if (marked.indexOf(element.id) < 0) {
          canvas.addMarker(element.id, 'hall-problem');
          marked.push(element.id);
          var badge = document.createElement('div');
          badge.className = 'hall-problem-badge';
          badge.title = problem.reason;
          badge.textContent = '!';
          modeler.get('overlays').add(element.id, 'hall-problem', { position: { top: -10, right: 10 }, html: badge });
        }
        button.addEventListener('click', function () {
          modeler.get('selection').select(element);
          canvas.scrollToElement(element);
        });
      }
    });
  }

  // -- the server ----------------------------------------------------------------------------------

  var FORM_REF = /name="(?:formJsonSchemaFilename|formUiSchemaFilename)"\s+value="([^"]+)"/g;

  function collectForms(xml) {
    var names = {};
    var match;
    while ((match = FORM_REF.exec(xml)) !== null) { names[match[1]] = true; }
    var uploads = Array.prototype.slice.call(document.getElementById('form-files').files || []);
    var uploaded = {};
    uploads.forEach(function (file) { uploaded[file.name] = file; });
    // Forms the diagram names and no upload provides come from the server (latest versions, forms folder).
    var wanted = Object.keys(names).filter(function (name) { return !uploaded[name]; });
    return Promise.all(wanted.map(function (name) {
      return fetch(data('form-url') + '?name=' + encodeURIComponent(name), { credentials: 'same-origin' })
        .then(function (r) { return r.ok ? r.blob().then(function (b) { return [name, b]; }) : null; });
    })).then(function (found) {
      var result = found.filter(Boolean);
      uploads.forEach(function (file) { result.push([file.name, file]); });
      return result;
    });
  }

  function submit(url) {
    return modeler.saveXML({ format: true }).then(function (saved) {
      return collectForms(saved.xml).then(function (forms) {
        var body = new FormData();
        body.append('file', new Blob([saved.xml], { type: 'application/xml' }), processKey() + '.bpmn');
        forms.forEach(function (pair) { body.append('forms', pair[1], pair[0]); });
        return fetch(url, { method: 'POST', body: body, credentials: 'same-origin',
          headers: { 'X-CSRF-Token': data('csrf'), Accept: 'application/json' } });
      });
    }).then(function (response) {
      return response.json().then(function (json) { return { status: response.status, body: json }; },
        function () { return { status: response.status, body: {} }; });
    });
  }

  function problemsOf(body) {
    if (Array.isArray(body.problems)) { return body.problems; }
    if (Array.isArray(body.errors)) { return body.errors; }
    var list = [];
    Object.keys(body.errors || {}).forEach(function (field) {
      [].concat(body.errors[field]).forEach(function (m) { list.push({ element: '', reason: field + '：' + m }); });
    });
    return list.length ? list : [{ element: '', reason: body.message || '请求失败' }];
  }

  function showWarnings(warnings) {
    (warnings || []).forEach(function (text) {
      var item = document.createElement('li');
      item.className = 'warning';
      item.textContent = '注意：' + text;
      problemList.appendChild(item);
    });
  }

  // Validate; resolves with the server's answer when the diagram passed (its warnings and what it would publish).
  function validate() {
    say('校验中…');
    return submit(data('validate-url')).then(function (result) {
      var problems = result.status === 200 ? result.body.problems : problemsOf(result.body);
      showProblems(problems);
      var warnings = problems.length ? [] : (result.body.warnings || []);
      showWarnings(warnings);
      root.setAttribute('data-validated', problems.length ? 'problems' : (warnings.length ? 'warnings' : 'ok'));
      say(problems.length ? '发现 ' + problems.length + ' 个问题，请按列表修改'
        : (warnings.length ? '校验通过，但有 ' + warnings.length + ' 条提醒，请先查看' : '校验通过'),
      problems.length ? 'error' : (warnings.length ? 'warn' : 'ok'));
      return problems.length ? null : result.body;
    }).catch(function (err) { say('校验失败：' + err.message, 'error'); return null; });
  }

  // 部署 first validates, then asks for confirmation showing what would be published, and only then deploys.
  var confirmDialog = document.getElementById('deploy-confirm');
  var confirmBody = document.getElementById('deploy-confirm-body');

  function confirmDeploy() {
    return validate().then(function (checked) {
      if (!checked || !checked.publish) { return; }
      var p = checked.publish;
      var lines = [
        ['流程', p.name + '（' + p.key + '）'],
        ['版本', p.unchanged ? '内容未变，沿用第 ' + p.version + ' 版（不会新建版本）'
          : (p.new_definition ? '新流程，第 1 版' : '新版本：第 ' + p.version + ' 版')],
        ['办事目录', !p.in_catalogue ? '不出现在「办事」中（由系统发起）'
          : (!p.enabled ? '此流程已停用，部署后仍不出现在「办事」中'
            : '出现在「办事」的「' + p.category + '」分类，' +
              (p.startable_by.length ? '可发起的角色：' + p.startable_by.join('、') : '所有用户（含学生）都可发起'))]
      ];
      confirmBody.innerHTML = '';
      lines.forEach(function (pair) {
        var dt = document.createElement('dt'); dt.textContent = pair[0];
        var dd = document.createElement('dd'); dd.textContent = pair[1];
        confirmBody.appendChild(dt); confirmBody.appendChild(dd);
      });
      (checked.warnings || []).forEach(function (text) {
        var dt = document.createElement('dt'); dt.textContent = '注意';
        var dd = document.createElement('dd'); dd.className = 'status-warn'; dd.textContent = text;
        confirmBody.appendChild(dt); confirmBody.appendChild(dd);
      });
      confirmDialog.showModal();
    });
  }

  confirmDialog.addEventListener('close', function () {
    if (confirmDialog.returnValue === 'deploy') { deploy(); } else { say('已取消部署'); }
  });

  function deploy() {
    say('部署中…');
    return submit(data('deploy-url')).then(function (result) {
      if (result.status === 200 || result.status === 201) {
        clearProblems();
        var v = result.body;
        say((result.status === 201 ? '已部署：' : '内容未变，沿用：') + v.key + ' 版本 ' + v.number, 'ok');
        root.setAttribute('data-deployed', v.key + ':' + v.number);
        document.getElementById('modeler-title').textContent = v.key + ' v' + v.number;
        loadVersions(v.key);
        return;
      }
      showProblems(problemsOf(result.body));
      say(result.body.message || '部署失败', 'error');
    }).catch(function (err) { say('部署失败：' + err.message, 'error'); });
  }

  function loadVersions(key) {
    if (!key) { return; }
    fetch(data('versions-url').replace('__KEY__', encodeURIComponent(key)), { credentials: 'same-origin' })
      .then(function (r) { return r.ok ? r.json() : []; })
      .then(function (versions) {
        versionList.innerHTML = '';
        versions.sort(function (a, b) { return b.number - a.number; }).forEach(function (v) {
          var item = document.createElement('li');
          item.textContent = 'v' + v.number + ' ';
          var open = document.createElement('a');
          open.href = data('modeler-url') + '?key=' + encodeURIComponent(key) + '&version=' + v.number;
          open.textContent = '打开';
          var download = document.createElement('a');
          download.href = data('bpmn-template-url').replace('__KEY__', encodeURIComponent(key)).replace('__N__', v.number);
          download.setAttribute('download', '');
          download.textContent = '下载';
          item.appendChild(open);
          item.appendChild(document.createTextNode(' '));
          item.appendChild(download);
          versionList.appendChild(item);
        });
        if (!versions.length) { versionList.innerHTML = '<li class="muted">尚未部署</li>'; }
      });
  }

  function download() {
    modeler.saveXML({ format: true }).then(function (saved) {
      var link = document.createElement('a');
      link.href = URL.createObjectURL(new Blob([saved.xml], { type: 'application/xml' }));
      link.download = processKey() + '.bpmn';
      document.body.appendChild(link);
      link.click();
      setTimeout(function () { URL.revokeObjectURL(link.href); link.remove(); }, 1000);
    });
  }

  document.getElementById('btn-validate').addEventListener('click', validate);
  document.getElementById('btn-deploy').addEventListener('click', confirmDeploy);
  document.getElementById('btn-download').addEventListener('click', download);

  // -- start ---------------------------------------------------------------------------------------

  var source = data('bpmn-url')
    ? fetch(data('bpmn-url'), { credentials: 'same-origin' }).then(function (r) {
      if (!r.ok) { throw new Error('无法读取流程图（' + r.status + '）'); }
      return r.text();
    })
    : Promise.resolve(newDiagram());
  source.then(function (xml) { return modeler.importXML(xml); })
    .then(function () {
      modeler.get('canvas').zoom('fit-viewport', 'auto');
      if (!data('bpmn-url')) { modeler.get('canvas').zoom(1); }
      showProps(null);
      root.setAttribute('data-ready', 'true');
      loadVersions(data('key'));
    })
    .catch(function (err) { say('打开失败：' + err.message, 'error'); root.setAttribute('data-ready', 'error'); });
})();
