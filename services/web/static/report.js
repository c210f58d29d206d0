/* The report form, enhanced: a draft kept in this browser, GPS, a photo preview, and a
   submission that survives network drops. The photo goes first (its id joins the
   draft), then the report with the form's Idempotency-Key: a resend after a drop is
   the same key and the same body, so intake answers with the same report. */
(function () {
  "use strict";
  var form = document.getElementById("report-form");
  if (!form || !window.fetch || !window.FormData) { return; }
  var DRAFT = "jembatan.draft", note = document.getElementById("draft-note");
  var button = document.getElementById("submit"), photo = document.getElementById("photo");
  var preview = document.getElementById("photo-preview");
  var KEPT = ["category", "lat", "lon", "address", "description", "name", "email", "phone", "language", "idempotency_key", "media_id"];
  function field(name) { return form.elements[name]; }
  function value(name) {
    var f = field(name); if (!f) { return ""; }
    if (f.length !== undefined && f.tagName !== "SELECT") {
      for (var i = 0; i < f.length; i++) { if (f[i].checked) { return f[i].value; } }
      return "";
    }
    return f.value;
  }
  function setValue(name, v) {
    var f = field(name); if (!f || !v) { return; }
    if (f.length !== undefined && f.tagName !== "SELECT") {
      for (var i = 0; i < f.length; i++) { f[i].checked = f[i].value === v; }
    } else { f.value = v; }
  }
  function saveDraft() {
    var d = {}; KEPT.forEach(function (k) { d[k] = value(k); });
    try { localStorage.setItem(DRAFT, JSON.stringify(d)); } catch (e) { /* private mode */ }
  }
  function say(text) { note.textContent = text; note.hidden = !text; }
  // A draft from an earlier visit fills an empty form (a page the server re-rendered
  // with errors already carries what was typed, and wins).
  var fresh = !document.getElementById("error-summary");
  try {
    var d = JSON.parse(localStorage.getItem(DRAFT) || "null");
    if (d && fresh) { KEPT.forEach(function (k) { setValue(k, d[k]); }); }
  } catch (e) { /* ignore a broken draft */ }
  form.addEventListener("input", saveDraft);
  form.addEventListener("change", saveDraft);
  var summary = document.getElementById("error-summary"); if (summary) { summary.focus(); }
  var gps = document.getElementById("gps");
  if (navigator.geolocation) {
    gps.hidden = false;
    gps.addEventListener("click", function () {
      navigator.geolocation.getCurrentPosition(function (pos) {
        if (window.jembatanPlace) { window.jembatanPlace(pos.coords.latitude, pos.coords.longitude); }
        else { field("lat").value = pos.coords.latitude.toFixed(6); field("lon").value = pos.coords.longitude.toFixed(6); saveDraft(); }
      }, function () { /* denied: the map or the fields remain */ }, { enableHighAccuracy: true, timeout: 15000 });
    });
  }
  photo.addEventListener("change", function () {
    field("media_id").value = ""; saveDraft();
    if (photo.files && photo.files[0] && window.URL) { preview.src = URL.createObjectURL(photo.files[0]); preview.hidden = false; }
  });
  var attempts = 0, timer = null, busy = false;
  function csrf() { return field("csrf").value; }
  function post(url, body) {
    return fetch(url, { method: "POST", body: body, credentials: "same-origin", headers: { "Accept": "application/json", "X-CSRF-Token": csrf() } });
  }
  function showErrors(errors) {
    // Bad input: let the server render the page with every message, keeping what was typed.
    saveDraft(); form.submit();
  }
  function retryLater() {
    attempts += 1; busy = false; button.disabled = false;
    say(button.getAttribute("data-draft"));
    if (attempts <= 8) { timer = setTimeout(send, Math.min(60000, 2000 * Math.pow(2, attempts - 1))); }
  }
  function send() {
    if (busy) { return; }
    busy = true; button.disabled = true; clearTimeout(timer);
    var needsPhoto = photo.files && photo.files[0] && !field("media_id").value;
    var step = Promise.resolve(null);
    if (needsPhoto) {
      var pd = new FormData(); pd.append("csrf", csrf()); pd.append("photo", photo.files[0]);
      step = post("/report/photo", pd).then(function (r) {
        if (r.status === 201) { return r.json().then(function (j) { field("media_id").value = j.media_id; saveDraft(); return null; }); }
        if (r.status === 422 || r.status === 403) { return "invalid"; }
        throw new Error("retry");
      });
    }
    step.then(function (outcome) {
      if (outcome === "invalid") { return showErrors(); }
      var body = new FormData(form); body.delete("photo");
      return post("/report", body).then(function (r) {
        if (r.status === 201) {
          return r.json().then(function (j) {
            if (window.jembatanSaveToken) { window.jembatanSaveToken(j.report_id, j.tracking_token); }
            try {
              var all = JSON.parse(localStorage.getItem("jembatan.tokens") || "{}") || {};
              all[j.report_id] = j.tracking_token; localStorage.setItem("jembatan.tokens", JSON.stringify(all));
              localStorage.removeItem(DRAFT);
            } catch (e) { /* private mode: the tracking page asks for the code */ }
            location.assign(j.url);
          });
        }
        if (r.status === 422 || r.status === 403) { return showErrors(); }
        throw new Error("retry");
      });
    }).catch(retryLater);
  }
  form.addEventListener("submit", function (ev) {
    ev.preventDefault(); attempts = 0; say(button.getAttribute("data-sending")); send();
  });
  window.addEventListener("online", function () { if (attempts > 0) { send(); } });
})();
