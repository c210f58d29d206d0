/* Maps, when Leaflet loaded: pick a point (report), show a point (tracking, case), the
   districts coloured by SLA compliance (city), the reports of a district. Without tiles
   the districts themselves are the base map: nothing is fetched from another host. */
(function () {
  "use strict";
  var el = document.getElementById("map");
  if (!el || !window.L) { return; }
  el.hidden = false;
  var L = window.L, mode = el.getAttribute("data-mode"), tiles = el.getAttribute("data-tiles");
  var map = L.map(el, { attributionControl: !!tiles, zoomSnap: 0.25 }).setView([-6.2, 106.83], 11);
  if (tiles) { L.tileLayer(tiles, { maxZoom: 19 }).addTo(map); }
  function colour(v) {
    if (v === null || v === undefined) { return "#9a9a9a"; }
    return v >= 0.9 ? "#1a7f37" : v >= 0.75 ? "#7bb03a" : v >= 0.5 ? "#e0a800" : "#c0392b";
  }
  function districts(style, then) {
    fetch(mode === "league" ? "/map/league.geojson" : "/map/districts.geojson", { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) {
        if (!data) { return; }
        var layer = L.geoJSON(data, { style: style, onEachFeature: function (f, l) {
          var p = f.properties || {};
          var pct = p.sla_compliance === null || p.sla_compliance === undefined ? "—" : Math.round(p.sla_compliance * 100) + "%";
          l.bindTooltip(p.name + " · " + pct);
          if (mode === "league") { l.on("click", function () { location.href = "/districts/" + encodeURIComponent(p.district_id); }); }
        } }).addTo(map);
        if (then) { then(layer); }
      }).catch(function () { /* the list and the tables still say everything */ });
  }
  var plain = function () { return { color: "#0b4f8a", weight: 1, fillOpacity: tiles ? 0.05 : 0.15 }; };
  if (mode === "league") {
    var legend = document.getElementById("legend"); if (legend) { legend.hidden = false; }
    districts(function (f) { return { color: "#333", weight: 1, fillColor: colour(f.properties.sla_compliance), fillOpacity: 0.7 }; },
      function (layer) { map.fitBounds(layer.getBounds()); });
  } else if (mode === "point") {
    var at = [parseFloat(el.getAttribute("data-lat")), parseFloat(el.getAttribute("data-lon"))];
    districts(plain);
    L.circleMarker(at, { radius: 9, color: "#a11d1d", fillOpacity: 0.8 }).addTo(map);
    map.setView(at, 14);
  } else if (mode === "reports") {
    var b = (el.getAttribute("data-bbox") || "").split(",").map(parseFloat);
    districts(plain);
    if (b.length === 4) { map.fitBounds([[b[1], b[0]], [b[3], b[2]]]); }
    Array.prototype.forEach.call(document.querySelectorAll("#reports li"), function (li) {
      var p = [parseFloat(li.getAttribute("data-lat")), parseFloat(li.getAttribute("data-lon"))];
      var a = li.querySelector("a");
      L.circleMarker(p, { radius: 7, color: "#0b4f8a", fillOpacity: 0.8 }).addTo(map)
        .bindTooltip(a ? a.textContent : "").on("click", function () { if (a) { location.href = a.href; } });
    });
  } else if (mode === "pick") {
    districts(plain);
    var lat = document.getElementById("lat"), lon = document.getElementById("lon"), marker = null;
    var place = function (ll, zoom) {
      if (marker) { marker.setLatLng(ll); } else { marker = L.circleMarker(ll, { radius: 9, color: "#a11d1d", fillOpacity: 0.8 }).addTo(map); }
      if (zoom) { map.setView(ll, 16); }
    };
    window.jembatanPlace = function (la, lo) {
      lat.value = la.toFixed(6); lon.value = lo.toFixed(6);
      lat.dispatchEvent(new Event("input", { bubbles: true }));
      place([la, lo], true);
    };
    if (lat.value && lon.value && !isNaN(parseFloat(lat.value))) { place([parseFloat(lat.value), parseFloat(lon.value)], true); }
    map.on("click", function (e) {
      lat.value = e.latlng.lat.toFixed(6); lon.value = e.latlng.lng.toFixed(6);
      lat.dispatchEvent(new Event("input", { bubbles: true }));
      place(e.latlng, false);
    });
  }
})();
