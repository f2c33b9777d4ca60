// The console's only script (progressive enhancement: every page works without it).
// 1. Buttons with data-confirm ask before submitting.
// 2. The grant form's condition is checked as it is typed, by the server's own checker.
"use strict";

document.addEventListener("click", function (event) {
  var button = event.target.closest("button[data-confirm]");
  if (button && !window.confirm(button.getAttribute("data-confirm"))) {
    event.preventDefault();
  }
});

(function () {
  var input = document.getElementById("when");
  var out = document.getElementById("when-check");
  if (!input || !out) { return; }
  var timer = null;
  var asked = 0;
  function check() {
    var text = input.value;
    var mine = ++asked;
    if (!text.trim()) { out.textContent = ""; out.className = "hint"; return; }
    fetch("/admin/grants/condition?when=" + encodeURIComponent(text), { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : { problem: "could not be checked (" + r.status + ")" }; })
      .then(function (body) {
        if (mine !== asked) { return; }
        out.textContent = body.problem ? "✗ " + body.problem : "✓ a valid condition";
        out.className = body.problem ? "hint bad" : "hint good";
      })
      .catch(function () { if (mine === asked) { out.textContent = ""; } });
  }
  input.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(check, 250); });
  if (input.value) { check(); }
})();
