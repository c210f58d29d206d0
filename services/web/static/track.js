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
