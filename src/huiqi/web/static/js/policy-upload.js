// Upload with a progress bar. Without JavaScript the form posts as usual; with it the file goes
// through XMLHttpRequest so the bar can follow the bytes, and a refused file shows its reason here.
(function () {
  var form = document.getElementById("policy-upload");
  if (!form || !window.XMLHttpRequest || !window.FormData) { return; }
  var input = document.getElementById("pfile");
  var button = document.getElementById("upload-button");
  var box = document.getElementById("upload-progress");
  var bar = document.getElementById("upload-bar");
  var status = document.getElementById("upload-status");
  var errorBox = document.getElementById("upload-error");
  var msg = form.dataset;

  function showError(text) {
    errorBox.textContent = text;
    errorBox.hidden = false;
    box.hidden = true;
    status.textContent = "";
    button.disabled = false;
    form.removeAttribute("aria-busy");
    errorBox.focus();
  }

  errorBox.setAttribute("tabindex", "-1");
  form.addEventListener("submit", function (event) {
    var file = input.files && input.files[0];
    if (!file) { return; }
    event.preventDefault();
    if (file.size === 0) { showError(file.name + ": " + msg.msgEmpty); return; }
    if (file.size > Number(msg.limit)) { showError(file.name + ": " + msg.msgTooLarge); return; }
    errorBox.hidden = true;
    button.disabled = true;
    form.setAttribute("aria-busy", "true");
    box.hidden = false;
    bar.value = 0;
    status.textContent = msg.msgSending + " 0%";
    var xhr = new XMLHttpRequest();
    xhr.open("POST", form.action);
    xhr.setRequestHeader("Accept", "text/html");
    xhr.upload.addEventListener("progress", function (e) {
      if (!e.lengthComputable) { return; }
      var pct = Math.round(100 * e.loaded / e.total);
      bar.value = pct;
      status.textContent = msg.msgSending + " " + pct + "%";
    });
    xhr.upload.addEventListener("load", function () {
      bar.value = 100;
      bar.removeAttribute("value");  // indeterminate while the server parses
      status.textContent = msg.msgParsing;
    });
    xhr.addEventListener("load", function () {
      if (xhr.status < 400) {
        // The server answered 303 to the review page; the request followed it.
        window.location.assign(xhr.responseURL || form.action);
        return;
      }
      var doc = new DOMParser().parseFromString(xhr.responseText, "text/html");
      var alert = doc.querySelector("#upload-error:not([hidden])") || doc.querySelector("[role=alert]") || doc.querySelector("main");
      var text = alert ? alert.textContent.replace(/\s+/g, " ").trim() : "";
      showError(text || (msg.msgFailed + " (HTTP " + xhr.status + ")"));
    });
    xhr.addEventListener("error", function () { showError(msg.msgNetwork); });
    xhr.send(new FormData(form));
  });
})();
