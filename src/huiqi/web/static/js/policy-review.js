// When an article is opened (#art-N), scroll the source panel to where that article starts, so
// the two columns show the same passage side by side.
(function () {
  var box = document.querySelector(".source-text");
  if (!box) { return; }
  function align() {
    var m = /^#art-(\d+)$/.exec(window.location.hash);
    var anchor = m && document.getElementById("src-art-" + m[1]);
    if (!anchor) { return; }
    var line = anchor.parentElement;
    box.scrollTop = line.offsetTop - box.offsetTop - 8;
  }
  window.addEventListener("hashchange", align);
  align();
})();
