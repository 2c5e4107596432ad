// The task page's upload: a file over the size limit is refused here, before anything is sent. Such a
// request would be cut off by the server before it read the task form, and what was typed would be lost.
(function () {
  "use strict";
  var input = document.getElementById("attachment-file");
  var button = document.querySelector("button[data-upload]");
  if (!input || !button) return;
  var limit = Number(input.dataset.maxBytes);
  button.addEventListener("click", function (event) {
    var file = input.files && input.files[0];
    var old = document.getElementById("file-error");
    if (!file || !(file.size > limit)) return;
    event.preventDefault();
    var message = old || document.createElement("p");
    message.id = "file-error";
    message.className = "field-error";
    message.setAttribute("role", "alert");
    message.textContent = input.dataset.tooLarge;
    if (!old) input.insertAdjacentElement("afterend", message);
    input.setAttribute("aria-invalid", "true");
    input.setAttribute("aria-describedby", "attachment-help file-error");
    input.value = "";
  });
})();
