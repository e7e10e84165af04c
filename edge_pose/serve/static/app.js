// Live view: the MJPEG stream in the <img>, numbers from the SSE stream (polling /api/frame as a fallback).
(function () {
  "use strict";
  var token = new URLSearchParams(window.location.search).get("token");
  var q = token ? "?token=" + encodeURIComponent(token) : "";
  var $ = function (id) { return document.getElementById(id); };
  var pollTimer = null;

  function fmt(v, digits) { return typeof v === "number" && isFinite(v) ? v.toFixed(digits) : "–"; }

  function setState(text, bad) {
    $("state").textContent = text;
    $("status").className = "stat" + (bad ? " bad" : "");
  }

  function show(rec) {
    var stats = rec.stats || {}, timings = rec.timings || {};
    $("people").textContent = (rec.persons || []).length;
    $("fps").textContent = fmt(stats.fps, 1);
    $("latency").textContent = fmt(timings.latency, 0);
    $("frame").textContent = rec.frame;
    setState("live", false);
  }

  function poll() {
    fetch("/api/frame" + q, { cache: "no-store" }).then(function (r) {
      if (r.status === 401) { needToken(); return null; }
      if (!r.ok) { setState(r.status === 503 ? "waiting" : "error " + r.status, true); return null; }
      return r.json();
    }).then(function (rec) { if (rec) { show(rec); } }).catch(function () { setState("offline", true); });
  }

  function startPolling() {
    if (!pollTimer) { pollTimer = setInterval(poll, 1000); poll(); }
  }

  function needToken() {
    setState("unauthorized", true);
    $("message").textContent = "this server needs a token: open /?token=YOUR_TOKEN";
  }

  window.addEventListener("load", function () {
    $("view").src = "/stream.mjpg" + q;
    if (!window.EventSource) { startPolling(); return; }
    var es = new EventSource("/api/events" + q);
    es.onmessage = function (e) { show(JSON.parse(e.data)); };
    es.onerror = function () {
      if (es.readyState === EventSource.CLOSED) { startPolling(); } else { setState("reconnecting", true); }
    };
  });
})();
