(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("report-data").textContent);
  var main = document.getElementById("annotated");
  var src = document.getElementById("source");
  var chart = document.getElementById("timeline");
  var cursor = document.getElementById("cursor");
  var stage = document.getElementById("stage");
  var controls = document.getElementById("view-controls");
  var blend = document.getElementById("blend");
  if (!main || main.tagName !== "VIDEO") { return; }

  function clamp(v, lo, hi) { return Math.min(Math.max(v, lo), hi); }
  function xOf(t) { return data.x0 + (data.x1 - data.x0) * clamp(t / data.duration, 0, 1); }
  function moveCursor() {
    var x = xOf(main.currentTime);
    cursor.setAttribute("x1", x);
    cursor.setAttribute("x2", x);
  }
  function tick() { moveCursor(); if (!main.paused) { window.requestAnimationFrame(tick); } }
  main.addEventListener("timeupdate", moveCursor);
  main.addEventListener("seeked", moveCursor);
  main.addEventListener("play", function () { window.requestAnimationFrame(tick); });

  chart.addEventListener("click", function (e) {
    var pt = chart.createSVGPoint();
    pt.x = e.clientX;
    pt.y = e.clientY;
    var p = pt.matrixTransform(chart.getScreenCTM().inverse());
    var t = (p.x - data.x0) / (data.x1 - data.x0) * data.duration;
    var end = isFinite(main.duration) ? main.duration : data.duration;
    main.currentTime = clamp(t, 0, end);
    moveCursor();
  });

  if (src) {
    var sync = function () {
      if (Math.abs(src.currentTime - main.currentTime) > 0.12) { src.currentTime = main.currentTime; }
    };
    main.addEventListener("play", function () { sync(); src.play().catch(function () {}); });
    main.addEventListener("pause", function () { src.pause(); sync(); });
    main.addEventListener("seeking", sync);
    main.addEventListener("timeupdate", sync);
    main.addEventListener("ratechange", function () { src.playbackRate = main.playbackRate; });
    src.controls = false;
    controls.hidden = false;
    var setView = function (mode) {
      stage.classList.toggle("blend", mode === "blend");
      blend.disabled = mode !== "blend";
    };
    controls.addEventListener("change", function (e) {
      if (e.target.name === "view") { setView(e.target.value); }
    });
    blend.addEventListener("input", function () { stage.style.setProperty("--blend", blend.value); });
    stage.style.setProperty("--blend", blend.value);
  }
})();
