/* The process diagram of an instance (bpmn-js navigated viewer): finished steps green, current steps blue.
   Reads its data from data-* attributes of each .diagram element, so the page needs no inline script:
   data-bpmn-url (the version's BPMN), data-completed and data-current (JSON lists of element ids),
   data-lane-labels (lane name -> what a person reads: lanes name roles by code, e.g. dept_head -> 部门负责人). */
(function () {
  'use strict';

  function list(el, name) {
    try { return JSON.parse(el.getAttribute(name) || '[]'); } catch (e) { return []; }
  }

  // Lanes name roles by their codes (the assignment rule reads them); show the roles' names instead.
  function relabel(xml, labels) {
    var doc = new DOMParser().parseFromString(xml, 'application/xml');
    if (doc.getElementsByTagName('parsererror').length) { return xml; }
    var changed = false;
    Array.prototype.forEach.call(doc.getElementsByTagNameNS('*', 'lane'), function (lane) {
      var label = labels[(lane.getAttribute('name') || '').trim()];
      if (label) { lane.setAttribute('name', label); changed = true; }
    });
    return changed ? new XMLSerializer().serializeToString(doc) : xml;
  }

  // Screen pixels kept free along the bottom for bpmn.io's mark (bottom right; its licence keeps it visible),
  // so that it never covers a step.
  var MARK = 44;

  function fit(viewer, box) {
    var canvas = viewer.get('canvas');
    // Height follows the diagram's proportions at the box's width, within phone-friendly bounds.
    var inner = canvas.viewbox().inner;
    var width = box.clientWidth || 320;
    var height = inner.width ? Math.round(inner.height / inner.width * width) + 40 + MARK : 200;
    box.style.height = Math.max(160, Math.min(height, 460)) + 'px';
    canvas.resized();
    whole(canvas);
  }

  // The whole diagram, centred above the mark's strip, with a margin (zoom('fit-viewport') leaves none,
  // clipping edge strokes).
  function whole(canvas) {
    var inner = canvas.viewbox().inner;
    var outer = canvas.getSize();
    var margin = 16;
    var above = Math.max(outer.height - MARK, 1);
    var scale = Math.min(outer.width / (inner.width + 2 * margin), above / (inner.height + 2 * margin), 1.5);
    var width = outer.width / scale;
    canvas.viewbox({ x: inner.x - (width - inner.width) / 2, y: inner.y - (above / scale - inner.height) / 2,
      width: width, height: outer.height / scale });
  }

  function show(box) {
    var holder = box.querySelector('.diagram-canvas');
    var status = box.querySelector('.diagram-status');
    var viewer = new window.BpmnJS({ container: holder });
    var done = list(box, 'data-completed');
    var current = list(box, 'data-current');
    var labels = {};
    try { labels = JSON.parse(box.getAttribute('data-lane-labels') || '{}'); } catch (e) { labels = {}; }
    fetch(box.getAttribute('data-bpmn-url'), { credentials: 'same-origin' })
      .then(function (r) { if (!r.ok) { throw new Error(r.status); } return r.text(); })
      .then(function (xml) { return viewer.importXML(relabel(xml, labels)); })
      .then(function () {
        var canvas = viewer.get('canvas');
        var registry = viewer.get('elementRegistry');
        done.forEach(function (id) {
          if (registry.get(id) && current.indexOf(id) < 0) { canvas.addMarker(id, 'hall-done'); }
        });
        current.forEach(function (id) { if (registry.get(id)) { canvas.addMarker(id, 'hall-current'); } });
        fit(viewer, holder);
        box.setAttribute('data-ready', 'true');
        if (status) { status.hidden = true; }
        box.querySelectorAll('[data-zoom]').forEach(function (button) {
          button.addEventListener('click', function () {
            var how = button.getAttribute('data-zoom');
            if (how === 'fit') { whole(canvas); return; }
            canvas.zoom(canvas.zoom() * (how === 'in' ? 1.25 : 0.8));
          });
        });
        var timer;
        window.addEventListener('resize', function () {
          clearTimeout(timer);
          timer = setTimeout(function () { fit(viewer, holder); }, 150);
        });
      })
      .catch(function (err) {
        // A diagram deployed without layout (no BPMNDiagram) has nothing to draw: say so, hide the tools.
        var noLayout = /no diagram to display/i.test(String(err && err.message));
        if (status) { status.textContent = noLayout ? '此流程没有图形布局，无法显示流程图' : '流程图加载失败'; }
        box.querySelectorAll('.diagram-canvas, .diagram-legend, .diagram-tools').forEach(function (el) { el.hidden = true; });
        box.setAttribute('data-ready', 'error');
      });
  }

  document.querySelectorAll('.diagram[data-bpmn-url]').forEach(show);
})();
