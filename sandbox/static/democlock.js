// The demo's clock bar on the real web chat page (only `make demo` adds it): move the bot's
// clock forward and run the sweeps due by then (sandbox/clock.py); the pushes arrive live.
"use strict";
(function () {
  function start() {
    var clock = document.getElementById("clock");
    if (!clock) return;
    var app = document.getElementById("app");
    var bar = document.getElementById("bar");
    if (app && bar) app.insertBefore(clock, bar.nextSibling);
    clock.style.cssText = "display:flex;flex-wrap:wrap;gap:6px;align-items:center;" +
      "padding:4px 10px;background:#dde7ef;font-size:13px";
    var now = clock.querySelector(".now");
    now.style.flex = "1";
    var buttons = clock.querySelectorAll("button[data-step]");
    async function state(step) {
      buttons.forEach(function (b) { b.disabled = true; });
      try {
        var options = step ? { method: "POST", headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ step: step }) } : {};
        var response = await fetch("_demo/clock", options);
        var body = await response.json();
        if (!body.ok) throw new Error(body.description || response.status);
        now.textContent = body.result.label;
      } catch (e) {
        if (step) now.textContent = clock.dataset.failed + e.message;
      } finally {
        buttons.forEach(function (b) { b.disabled = false; });
      }
    }
    clock.addEventListener("click", function (event) {
      var button = event.target.closest("button[data-step]");
      if (button) state(button.dataset.step);
    });
    state(null);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
