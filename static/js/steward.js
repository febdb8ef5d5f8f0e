// Small behaviours for server-rendered pages. No inline script anywhere (the CSP forbids it).
(function () {
  "use strict";
  function dismissible(root) {
    root.querySelectorAll("[data-dismiss]").forEach(function (button) {
      if (button.dataset.bound) return;
      button.dataset.bound = "1";
      button.addEventListener("click", function () {
        var target = button.closest(button.dataset.dismiss);
        if (target) target.remove();
      });
    });
  }
  document.addEventListener("DOMContentLoaded", function () { dismissible(document); });
  document.addEventListener("htmx:afterSwap", function (event) { dismissible(event.target); });
})();
