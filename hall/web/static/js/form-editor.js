/* The form editor: the JSON Schema in a textarea, the form drawn beside it by the server (the same code as
   the task page) on every pause in typing, and a download of the edited file. */
(function () {
  'use strict';

  var root = document.getElementById('form-editor');
  var text = document.getElementById('schema-text');
  var preview = document.getElementById('preview');
  var status = document.getElementById('preview-status');
  var sequence = 0;
  var timer = null;

  function render() {
    var mine = ++sequence;
    var body = new FormData();
    body.append('_csrf', root.getAttribute('data-csrf'));
    body.append('schema', text.value);
    status.textContent = '预览更新中…';
    fetch(root.getAttribute('data-preview-url'), { method: 'POST', body: body, credentials: 'same-origin' })
      .then(function (response) {
        return response.text().then(function (html) { return { ok: response.ok, html: html }; });
      })
      .then(function (result) {
        if (mine !== sequence) { return; } // an older answer arriving late must not overwrite a newer one
        // The fragment is rendered (and escaped) by the server's templates.
        preview.innerHTML = result.html;
        preview.setAttribute('data-state', result.ok ? 'ok' : 'error');
        text.setAttribute('aria-invalid', result.ok ? 'false' : 'true');
        status.textContent = result.ok ? '预览已更新' : '表单有误，见预览区';
      })
      .catch(function () { if (mine === sequence) { status.textContent = '预览失败，请检查网络'; } });
  }

  text.addEventListener('input', function () {
    clearTimeout(timer);
    timer = setTimeout(render, 300);
  });

  document.getElementById('btn-download-form').addEventListener('click', function () {
    var name = (document.getElementById('form-name').value || 'form.json').trim();
    if (!/\.json$/.test(name)) { name += '.json'; }
    var link = document.createElement('a');
    link.href = URL.createObjectURL(new Blob([text.value], { type: 'application/json' }));
    link.download = name;
    document.body.appendChild(link);
    link.click();
    setTimeout(function () { URL.revokeObjectURL(link.href); link.remove(); }, 1000);
  });

  render();
})();
