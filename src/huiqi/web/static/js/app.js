// Send the CSRF token with every htmx request, so htmx forms and buttons pass the check.
document.addEventListener("htmx:configRequest", function (event) {
  var meta = document.querySelector('meta[name="csrf-token"]');
  if (meta) { event.detail.headers["X-CSRF-Token"] = meta.content; }
});
// A "select all on this page" box ticks or clears every box of the name it names.
document.addEventListener("change", function (event) {
  var box = event.target;
  if (!box.matches || !box.matches("input[data-picks]")) { return; }
  var form = box.form || document;
  form.querySelectorAll('input[type=checkbox][name="' + box.dataset.picks + '"]').forEach(function (b) {
    b.checked = box.checked;
  });
});
// After a batch decision the summary takes the focus, so screen readers announce it.
document.addEventListener("DOMContentLoaded", function () {
  var summary = document.getElementById("review-message");
  if (summary) { summary.focus(); }
});
// Menus are <details>: one open at a time, closed by a click elsewhere or by Escape.
document.addEventListener("click", function (event) {
  document.querySelectorAll("nav.menus details[open]").forEach(function (d) {
    if (!d.contains(event.target)) { d.removeAttribute("open"); }
  });
});
document.addEventListener("keydown", function (event) {
  if (event.key !== "Escape") { return; }
  document.querySelectorAll("nav.menus details[open]").forEach(function (d) {
    d.removeAttribute("open");
    d.querySelector("summary").focus();
  });
});
// A table wider than the window scrolls sideways in its own box (on a phone); keyboard users
// reach that box with Tab and scroll it with the arrow keys. Boxes that fit get no tab stop.
function focusableScrollers() {
  document.querySelectorAll("main table, main .table-wrap").forEach(function (el) {
    var scrolls = el.scrollWidth > el.clientWidth + 1 && getComputedStyle(el).overflowX !== "visible";
    if (scrolls && !el.hasAttribute("tabindex")) {
      el.setAttribute("tabindex", "0");
      el.dataset.scrollFocus = "1";
    } else if (!scrolls && el.dataset.scrollFocus) {
      el.removeAttribute("tabindex");
      delete el.dataset.scrollFocus;
    }
  });
}
document.addEventListener("DOMContentLoaded", focusableScrollers);
window.addEventListener("resize", focusableScrollers);
