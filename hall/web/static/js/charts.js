// Draws the charts of the quality pages. Each <div data-chart="ID"> has its data in the
// <script type="application/json" id="ID"> next to it (no inline script: the CSP allows 'self' only).
// Kinds: bar (one series), stacked (several series, optionally horizontal), radar, trend (a line
// against its 目标值/标准值/预警值 mark lines). Clicking a bar follows data.links[index] when given.
(function () {
  'use strict';
  var COLORS = ['#1d4ed8', '#16a34a', '#d97706', '#dc2626', '#7c3aed', '#0891b2', '#db2777', '#65a30d',
    '#ea580c', '#4b5563', '#0d9488'];
  var LINE_COLORS = { 0: '#16a34a', 1: '#d97706', 2: '#dc2626' };
  var compact = function () { return window.innerWidth < 600; };

  function bar(d) {
    return {
      color: COLORS, tooltip: { trigger: 'axis' },
      grid: { left: 36, right: 12, top: 16, bottom: compact() ? 56 : 32 },
      xAxis: { type: 'category', data: d.categories, axisLabel: { interval: 0, rotate: compact() ? 45 : 0 } },
      yAxis: { type: 'value', minInterval: 1 },
      series: [{ type: 'bar', data: d.values, barMaxWidth: 36 }]
    };
  }

  function stacked(d) {
    var category = { type: 'category', data: d.categories, axisLabel: { interval: 0, width: 90, overflow: 'truncate' } };
    var value = { type: 'value', minInterval: 1 };
    if (!d.horizontal) { category.axisLabel.rotate = compact() ? 45 : 0; }
    return {
      color: COLORS, tooltip: { trigger: 'axis', axisPointer: { type: 'shadow' } },
      legend: { type: 'scroll', top: 0 },
      grid: { left: d.horizontal ? 100 : 36, right: 12, top: 36, bottom: d.horizontal ? 24 : (compact() ? 64 : 32) },
      xAxis: d.horizontal ? value : category, yAxis: d.horizontal ? category : value,
      series: d.series.map(function (s) {
        return { name: s.name, type: 'bar', stack: 'all', data: s.values, barMaxWidth: 36 };
      })
    };
  }

  function radar(d) {
    return {
      color: COLORS, tooltip: {},
      radar: { radius: compact() ? '52%' : '68%', indicator: d.indicators.map(function (name) {
        return { name: name, max: 100 };
      }), axisName: { color: '#323f4b', fontSize: 11, width: compact() ? 64 : 96, overflow: 'break' } },
      series: [{ type: 'radar', data: [{ value: d.values, name: d.name || '得分', areaStyle: { opacity: 0.2 } }] }]
    };
  }

  function trend(d) {
    // The axis spans the values and every line, so that the 目标值/标准值/预警值 lines are always in view.
    var all = d.values.concat(d.lines.map(function (l) { return l.value; })).filter(function (v) {
      return v !== null && v !== undefined;
    });
    var low = Math.min.apply(null, all), high = Math.max.apply(null, all);
    var pad = (high - low) * 0.1 || Math.abs(high) * 0.1 || 1;
    return {
      color: COLORS, tooltip: { trigger: 'axis' },
      grid: { left: 44, right: 56, top: 16, bottom: 28 },
      xAxis: { type: 'category', data: d.categories },
      yAxis: { type: 'value', min: Math.floor(low - pad), max: Math.ceil(high + pad) },
      series: [{
        type: 'line', data: d.values, connectNulls: true, symbolSize: 8,
        markLine: {
          symbol: 'none', silent: true,
          data: d.lines.map(function (line, i) {
            return { name: line.name, yAxis: line.value, lineStyle: { color: LINE_COLORS[i] || '#4b5563', type: 'dashed' },
              label: { formatter: line.name + ' {c}', position: 'end', fontSize: 10 } };
          })
        }
      }]
    };
  }

  var BUILD = { bar: bar, stacked: stacked, radar: radar, trend: trend };

  function draw(el) {
    var source = document.getElementById(el.getAttribute('data-chart'));
    if (!source || !window.echarts) { return; }
    var data = JSON.parse(source.textContent);
    var build = BUILD[data.kind];
    if (!build) { return; }
    var chart = window.echarts.init(el, null, { renderer: 'canvas' });
    chart.setOption(build(data));
    if (data.links) {
      chart.on('click', function (params) {
        var link = data.links[params.dataIndex];
        if (link) { window.location.href = link; }
      });
    }
    el.setAttribute('data-drawn', 'true');
    window.addEventListener('resize', function () { chart.resize(); });
  }

  function start() {
    Array.prototype.forEach.call(document.querySelectorAll('[data-chart]'), draw);
  }
  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', start);
  } else {
    start();
  }
})();
