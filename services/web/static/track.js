/* The tracking code stays in this browser (localStorage): saved when a report is sent,
   filled into the feedback forms, never put in a URL. */
(function () {
  "use strict";
  var KEY = "jembatan.tokens";
  function load() {
    try { return JSON.parse(localStorage.getItem(KEY) || "{}") || {}; } catch (e) { return {}; }
  }
  function save(id, token) {
    var all = load(); all[id] = token;
    try { localStorage.setItem(KEY, JSON.stringify(all)); } catch (e) { /* private mode */ }
  }
  window.jembatanSaveToken = save;
  var shown = document.getElementById("tracking-token");
  if (shown) { save(shown.getAttribute("data-report"), shown.textContent.trim()); }
  var mine = document.getElementById("my-reports");
  if (mine) {
    Object.keys(load()).forEach(function (id) {
      var li = document.createElement("li"); var a = document.createElement("a");
      a.href = "/reports/" + encodeURIComponent(id); a.textContent = id;
      li.appendChild(a); mine.appendChild(li);
    });
  }
  var m = location.pathname.match(/^\/reports\/([^/]+)$/);
  var status = document.getElementById("status");
  if (m && status && window.fetch && window.DOMParser) {
    // Live status: look again every 30 s for half an hour; reload when it changed, unless
    // the reader is writing a reason.
    var polls = 0, timer = setInterval(function () {
      polls += 1;
      if (polls > 60) { clearInterval(timer); return; }
      var typing = Array.prototype.some.call(document.querySelectorAll("textarea"), function (t) { return t.value; });
      if (typing || document.hidden) { return; }
      fetch(location.pathname, { credentials: "same-origin" }).then(function (r) { return r.ok ? r.text() : ""; })
        .then(function (html) {
          var now = html && new DOMParser().parseFromString(html, "text/html").getElementById("status");
          if (now && now.textContent !== status.textContent) { clearInterval(timer); location.reload(); }
        }).catch(function () { /* offline: try again next time */ });
    }, 30000);
  }
  if (m) {
    var token = load()[decodeURIComponent(m[1])];
    if (token) {
      Array.prototype.forEach.call(document.querySelectorAll("input.token"), function (input) {
        input.value = token;
        var wrap = input.closest(".token-field"); if (wrap) { wrap.hidden = true; }
      });
    }
  }
})();
