/* Access Atlas: the map's client-side functions, in one namespace.
 *
 * window.atlas holds the functions dash-leaflet calls (style, filter, pointToLayer,
 * clusterToLayer), always with the layer's props as the last argument (`context`), whose
 * `hideout` carries what changes (threshold, categories, filters, opacity). Changing the
 * hideout restyles or refilters a layer without fetching its geometry again.
 * window.dash_clientside.atlas holds the clientside callbacks (see callbacks/map.py).
 * window.atlas.drawn records when layers were last drawn (used by the tests and benchmarks).
 */
(function () {
  "use strict";

  var SHAPES = {
    square: '<rect x="3" y="3" width="14" height="14" rx="1.5"/>',
    circle: '<circle cx="10" cy="10" r="7.5"/>',
    triangle: '<path d="M10 2.2 L18.2 17 H1.8 Z"/>',
    diamond: '<path d="M10 1.5 L18.5 10 L10 18.5 L1.5 10 Z"/>',
    cross: '<path d="M7 2 H13 V7 H18 V13 H13 V18 H7 V13 H2 V7 H7 Z"/>',
    star: '<path d="M10 1.5 L12.4 7.2 L18.5 7.6 L13.8 11.5 L15.3 17.6 L10 14.3 L4.7 17.6 L6.2 11.5 L1.5 7.6 L7.6 7.2 Z"/>',
    hexagon: '<path d="M10 1.5 L17.4 5.8 V14.2 L10 18.5 L2.6 14.2 V5.8 Z"/>'
  };

  function now() { return (window.performance && performance.now) ? performance.now() : Date.now(); }

  function mark(layer, info) {
    var d = window.atlas.drawn;
    var t = now();
    d[layer] = Object.assign({ t: t, first: d[layer] ? d[layer].first : t, n: (d[layer] ? d[layer].n : 0) + 1 }, info || {});
  }

  function esc(text) {
    return String(text == null ? "" : text).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }

  function symbolSvg(shape, colour, size) {
    size = size || 22;
    return '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 20 20" width="' + size +
      '" height="' + size + '" aria-hidden="true" focusable="false"><g fill="' + colour +
      '" stroke="#fff" stroke-width="1.6" paint-order="stroke">' + (SHAPES[shape] || SHAPES.circle) +
      '</g></svg>';
  }

  function siteVisible(p, h) {
    if (!h || h.show === false) { return false; }
    if (h.cats && h.cats.indexOf(p.category) < 0) { return false; }
    var f = h.filters || [];
    for (var i = 0; i < f.length; i++) {
      if (p[f[i]] !== true) { return false; }
    }
    return true;
  }

  function classIndex(value, breaks) {
    var i = 0;
    while (i < breaks.length && value > breaks[i]) { i++; }
    return i;
  }

  /* The latest hideout a clientside callback set for a layer. dash-leaflet drops a hideout
   * change that arrives while the layer is still fetching its data and then draws with the
   * old one; style functions read this instead, so fast changes are never lost. */
  var latest = {};
  /* The sites layer's Leaflet group and supercluster index, once drawn (for fast refilters). */
  var sites = { group: null, index: null };
  function remember(marker) {
    var parents = marker._eventParents ? Object.values(marker._eventParents) : [];
    if (parents.length && parents[0].addData) { sites.group = parents[0]; }
  }
  var drawing = {};
  var settleTimer = null;
  var lastText = null;
  var careNow = { category: null, labels: {} };  // the care chosen, for transit stop tooltips
  var scenarioToken = "";  // the What-if scenario the link carries (w=), see scenarioLink

  /* A scenario store as a link token: base64url of its UTF-8 JSON (viewmodel.state.encode_scenario). */
  function scenarioTokenOf(store) {
    if (!store || !store.changes || !store.changes.length) { return ""; }
    var bytes = unescape(encodeURIComponent(JSON.stringify(store)));
    var token = window.btoa(bytes).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
    return token.length <= 3000 ? token : "";  // longer: save the scenario and share its name
  }

  /* A transit stop's tooltip: name, routes, wheelchair boarding and the walk to the care chosen. */
  function stopText(p) {
    var lines = ["<strong>" + esc(p.stop_name || p.name || "Transit stop") + "</strong>"];
    if (p.routes) { lines.push("Routes " + esc(p.routes)); }
    if (p.wheelchair === "yes") { lines.push("Wheelchair boarding"); }
    var cat = careNow.category;
    var key = "walk_min_" + cat;
    var label = (careNow.labels[cat] || String(cat || "").replace(/_/g, " ")).toLowerCase();
    if (cat && typeof p[key] === "number") {
      lines.push(Math.max(1, Math.round(p[key])) + " min walk to the nearest " + esc(label));
    } else if (cat && key in p) {
      lines.push("No " + esc(label) + " within walking reach");
    }
    return lines.join("<br>");
  }
  var lastSettled = null;
  var lastLegend = null;
  var timers = {};
  /* Run `fn` once `ms` have passed without another call for the same key. */
  function later(key, fn, ms) {
    if (timers[key]) { window.clearTimeout(timers[key]); }
    timers[key] = window.setTimeout(function () { timers[key] = null; fn(); }, ms);
  }
  var urlTimer = null;
  function current(key, context) {
    if (context && context.map) { window.atlas.map = context.map; }
    return latest[key] || (context && context.hideout) || {};
  }

  /* Restyle a drawn layer in place (no new Leaflet layers, no refetch): every feature layer
   * in `pane` gets `style(feature, context)` again. False when the layer is not drawn yet. */
  function restyle(pane, styleFn, key) {
    var map = window.atlas.map;
    if (!map) { return false; }
    var found = false;
    var context = { map: map, hideout: latest[key] };
    var renderers = [];
    map.eachLayer(function (layer) {
      if (layer.feature && layer.options && layer.options.pane === pane && layer.setStyle) {
        found = true;
        layer.setStyle(styleFn(layer.feature, context));
        if (layer._renderer && renderers.indexOf(layer._renderer) < 0) { renderers.push(layer._renderer); }
      }
    });
    // Draw now rather than at the next animation frame, which the page's other work delays.
    renderers.forEach(function (r) { if (r._redraw && r._redrawRequest) { r._redraw(); } });
    return found;
  }

  var HIDDEN = { stroke: false, fill: false, fillOpacity: 0, opacity: 0, interactive: false };

  /* How the minute band `m` is drawn under the surface hideout `h`: desert beyond the
   * threshold, else the colour of the first band it is within; null when not drawn. */
  function bandFill(m, h) {
    var op = (h.opacity == null ? 0.6 : h.opacity);
    if (h.desert && m > h.threshold) {
      return { desert: true, style: { stroke: false, fill: true, fillColor: h.desertColour || "#D55E00",
        fillOpacity: Math.min(1, op * 1.15), interactive: false } };
    }
    if (h.bands) {
      var b = h.bandsMin || [10, 20, 30];
      for (var i = 0; i < b.length; i++) {
        if (m <= b[i]) {
          return { desert: false, style: { stroke: false, fill: true, fillColor: h.bandColours[i],
            fillOpacity: op * 0.8, interactive: false } };
        }
      }
    }
    return null;
  }

  /* Style in the layer's pane (dash-leaflet does not pass `pane` to GeoJSON layers). */
  function inPane(style, h) {
    if (h && h.pane) { style = Object.assign({}, style, { pane: h.pane }); }
    return style;
  }

  window.atlas = Object.assign({}, window.atlas, {
    drawn: (window.atlas && window.atlas.drawn) || {},
    latest: latest,
    symbolSvg: symbolSvg,

    /* ---- care sites (clustered points) ---------------------------------------- */
    siteFilter: function (feature, context) {
      var p = feature.properties || {};
      if (p.cluster) { return true; }  // clusterToLayer counts the leaves that pass
      return siteVisible(p, current("sites", context));
    },

    sitePoint: function (feature, latlng, context) {
      var p = feature.properties || {};
      var h = context.hideout || {};
      var style = (h.styles || {})[p.category] || { colour: "#333", shape: "circle", label: p.category };
      var label = (p.name || "Care site") + " — " + style.label + (p.approx ? " (approximate area)" : "");
      mark("sites", { visible: true });
      if (p.approx) {
        return L.circle(latlng, {
          radius: h.approxRadius || 460, color: style.colour, weight: 2, dashArray: "6 4",
          fillColor: style.colour, fillOpacity: 0.15
        }).bindTooltip(esc(label) + "<br>Shown only as an area: this site asked not to be shown exactly.");
      }
      var icon = L.divIcon({
        html: symbolSvg(style.shape, style.colour, 22),
        className: "atlas-site atlas-site--" + p.category,
        iconSize: [22, 22], iconAnchor: [11, 11]
      });
      var marker = L.marker(latlng, { icon: icon, title: label, alt: label, keyboard: true, riseOnHover: true });
      marker.on("add", function () {
        remember(marker);
        var el = marker.getElement();
        if (el) {
          el.setAttribute("role", "button");
          el.setAttribute("aria-label", label);
          el.setAttribute("data-site-id", p.id || "");
          el.addEventListener("keydown", function (e) {
            if (e.key === "Enter" || e.key === " ") {
              e.preventDefault();
              // propagate to the GeoJSON layer, whose click handler sets clickData
              marker.fire("click", { latlng: latlng, originalEvent: e }, true);
            }
          });
        }
      });
      return marker;
    },

    siteCluster: function (feature, latlng, index, context) {
      var h = current("sites", context);
      sites.index = index;
      var leaves = index.getLeaves(feature.properties.cluster_id, Infinity);
      var shown = leaves.filter(function (leaf) { return siteVisible(leaf.properties || {}, h); });
      if (shown.length === 0) {
        return L.marker(latlng, { icon: L.divIcon({ html: "", className: "atlas-empty", iconSize: [0, 0] }), interactive: false, keyboard: false });
      }
      if (shown.length === 1) {
        return window.atlas.sitePoint(shown[0], L.latLng(shown[0].geometry.coordinates[1], shown[0].geometry.coordinates[0]), context);
      }
      var n = shown.length;
      var size = n < 10 ? 30 : (n < 100 ? 36 : 42);
      var label = n + " care sites here; select to zoom in";
      var icon = L.divIcon({
        html: "<span>" + n + "</span>", className: "atlas-cluster",
        iconSize: [size, size], iconAnchor: [size / 2, size / 2]
      });
      var marker = L.marker(latlng, { icon: icon, title: label, alt: label, keyboard: true });
      marker.on("add", function () {
        remember(marker);
        var el = marker.getElement();
        if (el) { el.setAttribute("role", "button"); el.setAttribute("aria-label", label); }
      });
      return marker;
    },

    /* ---- travel-time bands and the desert (minute bands) ----------------------- */
    surfaceStyle: function (feature, context) {
      var p = feature.properties || {};
      // The scenario's bands share this pane (and the in-place restyle): styled as its own.
      if (p.scn && window.atlas.scenarioBandStyle) { return window.atlas.scenarioBandStyle(feature, context); }
      var h = current("surface", context);
      window.atlas.surfaceSeen = h;
      var m = p.m;
      if (!drawing.surface) {  // the first feature of a draw: features follow synchronously
        drawing.surface = true;
        Promise.resolve().then(function () { drawing.surface = false; });
        mark("surface", { threshold: h.threshold, desert: 0, url: context.url });
        // A scenario's bands drawn before these must stay on top of them.
        if (window.atlas.scenarioToFront) { window.setTimeout(window.atlas.scenarioToFront, 0); }
      }
      var style = bandFill(m, h);
      if (style && style.desert) { window.atlas.drawn.surface.desert += 1; }
      return inPane(style ? style.style : HIDDEN, h);
    },

    /* The fill of minute band `m` under the surface hideout `h` ({style, desert}), or null. */
    bandFill: function (m, h) { return bandFill(m, h); },

    /* ---- choropleths ---------------------------------------------------------- */
    choroplethStyle: function (feature, context) {
      var h = context.hideout || {};
      if (!h.show) { return inPane(HIDDEN, h); }
      mark(h.mark || "choropleth", { prop: h.prop });
      var p = feature.properties;
      var v = p[h.prop];
      // A scenario's values (callbacks/scenario.py) for the areas or hexagons it changes.
      var o = h.scenario;
      if (o && o.prop === h.prop) {
        var byId = p.area_id != null ? [o.areas, String(p.area_id)] : (p.h3 != null ? [o.grid, String(p.h3)] : null);
        if (byId && byId[0] && Object.prototype.hasOwnProperty.call(byId[0], byId[1])) {
          v = byId[0][byId[1]];
        }
      }
      var op = h.opacity == null ? 0.6 : h.opacity;
      if (v == null) {
        return inPane({ color: "#999", weight: 0.3, fillColor: "#f0f0f0", fillOpacity: op * 0.5, interactive: false }, h);
      }
      return inPane({ color: "#fff", weight: 0.3, fillColor: h.colours[classIndex(v, h.breaks)], fillOpacity: op, interactive: false }, h);
    },

    overdoseStyle: function (feature, context) {
      var h = context.hideout || {};
      if (!h.show) { return inPane(HIDDEN, h); }
      mark("overdose", {});
      var p = feature.properties;
      var op = h.opacity == null ? 0.6 : h.opacity;
      if (p.suppressed === true || p[h.prop] == null) {
        return inPane({ color: "#555", weight: 1, dashArray: "2 3", fillColor: "#bdbdbd", fillOpacity: op * 0.7, interactive: false }, h);
      }
      var s = { color: "#fff", weight: 0.5, fillColor: h.colours[classIndex(p[h.prop], h.breaks)], fillOpacity: op, interactive: false };
      if (p.unstable === true) { s.color = "#222"; s.weight = 1.2; s.dashArray = "5 4"; }
      return inPane(s, h);
    },

    /* ---- offline basemap ------------------------------------------------------- */
    streetStyle: function (feature, context) {
      var h = context.hideout || {};
      if (h.show === false) { return inPane(HIDDEN, h); }
      mark("streets", {});
      var r = feature.properties.r;
      var w = [3.2, 2.4, 2.0, 1.5, 0.9, 0.6][r] || 0.6;
      var c = ["#8a8a8a", "#999", "#a5a5a5", "#b3b3b3", "#c4c4c4", "#d2d2d2"][r] || "#d2d2d2";
      return inPane({ color: c, weight: w, opacity: 0.95, interactive: false, lineCap: "round", lineJoin: "round" }, h);
    },

    labelFilter: function (feature, context) {
      var h = context.hideout || {};
      if (h.show === false) { return false; }
      var z = h.zoom || 11;
      var most = z >= 14 ? 1000 : (z >= 13 ? 40 : (z >= 12 ? 20 : 8));
      return (feature.properties.k || 0) < most;
    },

    labelPoint: function (feature, latlng) {
      var p = feature.properties;
      var icon = L.divIcon({
        html: '<span style="transform: translate(-50%,-50%) rotate(' + (p.angle || 0) + 'deg)">' + esc(p.name) + "</span>",
        className: "atlas-maplabel", iconSize: [0, 0]
      });
      return L.marker(latlng, { icon: icon, interactive: false, keyboard: false, pane: "atlas-labels" });
    },

    outlineStyle: function () {
      return { color: "#333", weight: 2, dashArray: "8 5", fill: false, interactive: false };
    },

    /* ---- rules and extras ------------------------------------------------------- */
    barrierStyle: function (feature, context) {
      var h = context.hideout || {};
      if (!h.show) { return inPane(HIDDEN, h); }
      var p = feature.properties;
      var conditional = p.status === "conditional";
      return inPane({ color: "#6a3d9a", weight: 1, dashArray: conditional ? "4 4" : null, fillColor: "#6a3d9a",
               fillOpacity: conditional ? 0.15 : 0.3, interactive: false }, h);
    },

    sitableStyle: function (feature, context) {
      var h = context.hideout || {};
      if (!h.show) { return inPane(HIDDEN, h); }
      return inPane({ color: "#1b7837", weight: 1, fillColor: "#5aae61", fillOpacity: 0.2, interactive: false }, h);
    },

    showFilter: function (feature, context) {
      return !!(context.hideout && context.hideout.show);
    },

    stopPoint: function (feature, latlng) {
      var p = feature.properties || {};
      return L.circleMarker(latlng, { radius: 3, color: "#fff", weight: 1, fillColor: "#444", fillOpacity: 1 })
        .bindTooltip(function () { return stopText(p); });  // built when shown: follows the care chosen
    },

    selectionStyle: function () {
      return { color: "#000", weight: 3, fill: false, interactive: false };
    },

    /* ---- the URL ------------------------------------------------------------------ */
    encodeState: function (s, d) {
      var q = [];
      function same(a, b) { return (a || []).join(",") === (b || []).join(","); }
      function put(k, v) { q.push(k + "=" + encodeURIComponent(v).replace(/%2C/g, ",")); }
      if (s.region !== d.defaultRegion) { put("region", s.region); }
      if (s.category !== d.category) { put("cat", s.category); }
      if (s.mode !== d.modeFor[s.category]) { put("mode", s.mode); }
      if (s.threshold !== d.thresholds[s.category + "/" + s.mode]) { put("t", s.threshold); }
      var layers = d.allLayers.filter(function (k) { return (s.layers || []).indexOf(k) >= 0; });
      if (!same(layers, d.layers)) { put("layers", layers.join(",")); }
      var sites = d.siteCategories.filter(function (k) { return (s.sites || []).indexOf(k) >= 0; });
      if (!same(sites, d.siteCategories)) { put("sites", sites.join(",")); }
      var filters = d.filters.filter(function (k) { return (s.filters || []).indexOf(k) >= 0; });
      if (filters.length) { put("f", filters.join(",")); }
      if (s.unit && s.unit !== d.unit) { put("unit", s.unit); }
      if (s.opacity != null && s.opacity !== d.opacity) { put("op", s.opacity); }
      if (s.center && s.zoom != null) {
        var lat = Array.isArray(s.center) ? s.center[0] : s.center.lat;
        var lon = Array.isArray(s.center) ? s.center[1] : s.center.lng;
        put("lat", Number(lat).toFixed(5)); put("lon", Number(lon).toFixed(5)); put("z", Math.round(s.zoom));
      }
      if (s.query) { put("q", s.query); }
      if (scenarioToken) { put("w", scenarioToken); }
      return q.length ? "?" + q.join("&") : "";
    }
  });

  /* A new hideout with `changes`, or no_update when nothing changes (no redraw). */
  function changed(hideout, changes) {
    var same = true;
    for (var k in changes) {
      if (!hideout || hideout[k] !== changes[k]) { same = false; }
    }
    return same ? window.dash_clientside.no_update : Object.assign({}, hideout, changes);
  }

  /* A layer fetched the first time it is shown and hidden through its hideout afterwards. */
  function lazy(layers, key, url, hideout, currentUrl) {
    var show = (layers || []).indexOf(key) >= 0;
    var newUrl = (show || currentUrl) ? (url || null) : null;
    return [newUrl === currentUrl ? window.dash_clientside.no_update : newUrl, changed(hideout, { show: show })];
  }

  var cs = {
    /* Hideout of the minute-band surface: threshold (live while dragging), layers, opacity. */
    surfaceHideout: function (dragValue, value, layers, opacity, hideout) {
      var t = (dragValue == null ? value : dragValue);
      var prev = latest.surface || hideout || {};
      var h = Object.assign({}, prev, {
        threshold: t, desert: (layers || []).indexOf("desert") >= 0,
        bands: (layers || []).indexOf("bands") >= 0, opacity: (opacity || 60) / 100
      });
      var text = t + " min";
      if (h.threshold === prev.threshold && h.desert === prev.desert &&
          h.bands === prev.bands && h.opacity === prev.opacity) {
        return [window.dash_clientside.no_update, text];
      }
      window.atlas.drawn.requested = { threshold: t, t: now() };
      latest.surface = h;
      // Restyle the drawn bands in place; only when they are not drawn yet does the new
      // hideout go through dash-leaflet (which would rebuild every polygon).
      if (restyle("atlas-surface", window.atlas.surfaceStyle, "surface")) {
        return [window.dash_clientside.no_update, text];
      }
      return [h, text];
    },

    /* URL of the minute bands for the chosen category and mode. */
    surfaceUrl: function (category, mode, store) {
      return store.urls.bands.replace("{category}", category).replace("{mode}", mode);
    },

    /* The configured threshold of a (category, mode) when either changes. */
    defaultThreshold: function (category, mode, defaults) {
      var t = defaults.thresholds[category + "/" + mode];
      return t == null ? window.dash_clientside.no_update : t;
    },

    sitesHideout: function (cats, filters, layers, hideout) {
      var prev = latest.sites || hideout || {};
      var h = Object.assign({}, prev, {
        cats: cats || [], filters: filters || [], show: (layers || []).indexOf("sites") >= 0
      });
      if (h.show === prev.show && String(h.cats) === String(prev.cats) &&
          String(h.filters) === String(prev.filters)) {
        return window.dash_clientside.no_update;
      }
      latest.sites = h;
      var map = window.atlas.map;
      if (map && sites.group && sites.index && map.hasLayer(sites.group)) {
        // Re-cluster in place with the filter reading latest.sites (what dash-leaflet does
        // on a new hideout, without a round through Dash).
        var b = map.getBounds();
        var clusters = sites.index.getClusters([b.getWest(), b.getSouth(), b.getEast(), b.getNorth()], map.getZoom());
        sites.group.clearLayers();
        sites.group.addData(clusters);
        mark("sites", {});
        return window.dash_clientside.no_update;
      }
      return h;
    },

    /* A scenario that came with the link: hand it to the What-if panel once. */
    scenarioRestore: function (data) {
      if (!data || !data.changes || !data.changes.length) { return window.dash_clientside.no_update; }
      scenarioToken = scenarioTokenOf(data);
      window.dash_clientside.set_props("scenario-action", { data: { kind: "restore", scenario: data } });
      return true;
    },

    /* The address bar and the share link carry the scenario the panel holds (w=). */
    scenarioLink: function (store) {
      var token = scenarioTokenOf(store);
      if (token === scenarioToken) { return window.dash_clientside.no_update; }
      scenarioToken = token;
      var parts = (window.location.search || "").replace(/^\?/, "").split("&").filter(function (p) {
        return p && p.indexOf("w=") !== 0;
      });
      if (token) { parts.push("w=" + token); }
      var href = (window.location.pathname || "/") + (parts.length ? "?" + parts.join("&") : "");
      try { window.history.replaceState(null, "", href); } catch (e) { /* sandboxed */ }
      window.dash_clientside.set_props("share-link", { href: href });
      return window.dash_clientside.no_update;
    },

    /* Every map change the controls make, in one pass (see callbacks/map.py). */
    mapState: function (drag, value, layers, opacity, cats, filters, unit, category, mode, zoom,
                        center, query, store, defaults, hSurface, hSites, hAreas, uAreas, hOd,
                        uOd, hBar, uBar, hSit, uSit, hTr, uTr, hMajor, hMinor, hLabels, uMinor,
                        settled) {
      var no = window.dash_clientside.no_update;
      careNow.category = category;
      Object.keys((hSites && hSites.styles) || {}).forEach(function (c) {
        careNow.labels[c] = hSites.styles[c].label || c;
      });
      var surface = cs.surfaceHideout(drag, value, layers, opacity, hSurface);
      var text = surface[1] === lastText ? no : surface[1];
      lastText = surface[1];
      var sitesH = cs.sitesHideout(cats, filters, layers, hSites);
      var areas = cs.areasLayer(layers, unit, category, mode, opacity, store, hAreas, uAreas);
      var od = cs.overdoseLayer(layers, opacity, store, hOd, uOd);
      var bar = lazy(layers, "barriers", store.urls.barriers, hBar, uBar);
      var sit = lazy(layers, "sitable", store.urls.sitable, hSit, uSit);
      var tr = lazy(layers, "transit", store.urls.transit, hTr, uTr);
      var st = cs.streets(layers, zoom, store, hMajor, hMinor, hLabels, uMinor);
      var key = [category, mode, value].join("|");
      if (lastSettled === null && settled) {  // what the page was rendered with
        lastSettled = [settled.category, settled.mode, settled.threshold].join("|");
      }
      if (key !== lastSettled) { lastSettled = key; cs.settle(value, category, mode); }
      var legend = JSON.stringify([layers, cats, category, mode, value]);
      if (lastLegend === null) { lastLegend = legend; }  // the page came with its legend
      if (legend !== lastLegend) {
        lastLegend = legend;
        later("legend", function () {
          window.dash_clientside.set_props("atlas-legend-state", { data: {
            layers: layers, sites: cats, category: category, mode: mode, threshold: value } });
        }, 250);
      }
      cs.writeUrl(category, mode, value, layers, cats, filters, unit, opacity, center, zoom, query, defaults);
      return [surface[0], text, sitesH, areas[0], areas[1], od[0], od[1], bar[0], bar[1],
              sit[0], sit[1], tr[0], tr[1], st[0], st[1], st[2], st[3]];
    },

    /* Bring a panel that just got new content into view (the side panel scrolls). */
    reveal: function (children, id) {
      var el = document.getElementById(id);
      if (el && el.parentElement && el.parentElement.scrollIntoView) {
        el.parentElement.scrollIntoView({ block: "nearest", behavior: "smooth" });
      }
      return window.dash_clientside.no_update;
    },

    /* Summary and legend follow the threshold once it settles (server round trips). */
    settle: function (value, category, mode) {
      if (settleTimer) { window.clearTimeout(settleTimer); }
      settleTimer = window.setTimeout(function () {
        settleTimer = null;
        window.dash_clientside.set_props("atlas-settled", {
          data: { category: category, mode: mode, threshold: value }
        });
      }, 250);
      return window.dash_clientside.no_update;
    },

    /* Choropleth of travel time: lazy URL (fetched the first time it is shown), property, opacity. */
    areasLayer: function (layers, unit, category, mode, opacity, store, hideout, currentUrl) {
      var show = (layers || []).indexOf("areas") >= 0;
      var url = currentUrl;
      var wanted = store.urls[unit] || store.urls.areas;
      if (show && url !== wanted) { url = wanted; }
      return [url === currentUrl ? window.dash_clientside.no_update : url,
              changed(hideout, { show: show, prop: "t_" + category + "_" + mode, opacity: (opacity || 60) / 100 })];
    },

    /* Practitioners per 10,000 people by census area (capacity-aware access): lazy URL,
     * the category and mode's property, opacity. */
    capacityLayer: function (layers, opacity, category, mode, store, hideout, currentUrl) {
      var show = (layers || []).indexOf("capacity") >= 0;
      var url = (show || currentUrl) ? ((store && store.urls && store.urls.areas) || null) : null;
      return [url === currentUrl ? window.dash_clientside.no_update : url,
              changed(hideout, { show: show, prop: "cap_" + category + "_" + mode,
                                 opacity: (opacity || 60) / 100 })];
    },

    overdoseLayer: function (layers, opacity, store, hideout, currentUrl) {
      var show = (layers || []).indexOf("overdose") >= 0;
      return [(show || currentUrl) ? (store.urls.overdose || null) : null,
              changed(hideout, { show: show, opacity: (opacity || 60) / 100 })];
    },


    /* Streets: major always (unless switched off), minor from zoom 13, labels with them. */
    streets: function (layers, zoom, store, hMajor, hMinor, hLabels, currentMinor) {
      var show = (layers || []).indexOf("streets") >= 0;
      var minorShow = show && zoom != null && zoom >= 13;
      var minorUrl = (minorShow || currentMinor) ? store.urls.streets_minor : null;
      return [
        changed(hMajor, { show: show }),
        minorUrl === currentMinor ? window.dash_clientside.no_update : minorUrl,
        changed(hMinor, { show: minorShow }),
        changed(hLabels, { show: show, zoom: zoom })
      ];
    },

    /* Write the state into the address bar (replaceState: no history spam) and the share link. */
    writeUrl: function (category, mode, threshold, layers, sites, filters, unit, opacity, center, zoom, query, defaults) {
      var state = {
        region: defaults.region, category: category, mode: mode, threshold: threshold,
        layers: layers, sites: sites, filters: filters, unit: unit, opacity: opacity,
        center: center, zoom: zoom, query: query
      };
      // Written once the map settles: the address bar need not follow every key press.
      if (urlTimer) { window.clearTimeout(urlTimer); }
      urlTimer = window.setTimeout(function () {
        urlTimer = null;
        var href = (window.location.pathname || "/") + window.atlas.encodeState(state, defaults);
        try { window.history.replaceState(null, "", href); } catch (e) { /* sandboxed */ }
        window.dash_clientside.set_props("share-link", { href: href });
      }, 200);
      return window.dash_clientside.no_update;
    }
  };

  window.dash_clientside = Object.assign({}, window.dash_clientside, { atlas: cs });

  /* Screen-reader names for the widgets inside labelled Dash components: a <label for=X>
   * names the component's wrapper, not the slider thumb or the dropdown button inside it. */
  function labelWidgets() {
    var map = document.getElementById("map");
    if (map && !map.getAttribute("aria-label")) {
      map.setAttribute("aria-label", "Map");
      map.setAttribute("aria-describedby", "map-help");
    }
    var labels = document.querySelectorAll("label[for]");
    for (var i = 0; i < labels.length; i++) {
      var target = document.getElementById(labels[i].getAttribute("for"));
      if (!target || target.tagName === "INPUT") { continue; }
      var name = labels[i].textContent.trim();
      var widgets = target.querySelectorAll('[role="slider"], input, button, [role="combobox"]');
      for (var j = 0; j < widgets.length; j++) {
        var w = widgets[j];
        if (!w.getAttribute("aria-label") && !w.getAttribute("aria-labelledby")) {
          w.setAttribute("aria-label", w.tagName === "INPUT" && w.type === "number" ? name + " (number)" : name);
        }
      }
    }
  }
  var pending = null;
  function schedule() {
    if (pending) { return; }
    pending = window.setTimeout(function () { pending = null; labelWidgets(); }, 150);
  }
  if (window.MutationObserver) {
    document.addEventListener("DOMContentLoaded", function () {
      new MutationObserver(schedule).observe(document.body, { childList: true, subtree: true });
      schedule();
    });
  }
}());

/* --- scenario --- */
/* The What-if panel (layouts/scenario.py, callbacks/scenario.py): styles of the cells that left
 * or entered the desert, markers of the added, closed and suggested sites, the add-mode switch
 * (Esc stops it), and "What if this site closed?" in a site's details, which hands the site to
 * the panel through the `scenario-action` store. window.atlas.drawn.scenario records the
 * last draw of the change cells (tests). */
(function () {
  "use strict";

  var HIDE = { stroke: false, fill: false, fillOpacity: 0, opacity: 0, interactive: false };
  var drawing = false;
  var closeCount = 0;

  function esc(text) {
    return String(text == null ? "" : text).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }

  function nothing(latlng) {
    return L.marker(latlng, { icon: L.divIcon({ html: "", className: "atlas-empty", iconSize: [0, 0] }),
      interactive: false, keyboard: false });
  }

  function markScenario(kind) {
    var d = window.atlas.drawn;
    if (!drawing) {
      drawing = true;
      Promise.resolve().then(function () { drawing = false; });
      d.scenario = { t: (window.performance ? performance.now() : Date.now()), gain: 0, loss: 0,
        n: d.scenario ? d.scenario.n + 1 : 1 };
    }
    if (kind) { d.scenario[kind] = (d.scenario[kind] || 0) + 1; }
  }

  /* Canvas paths with the `knockout` option first clear what was drawn beneath them in
   * their canvas (the pane's), then fill as usual: the scenario's bands replace the
   * baseline's under them rather than blending over them. Patched once, on first use. */
  function knockoutCanvas() {
    if (!window.L || !L.Canvas || L.Canvas.prototype._atlasKnockout) { return; }
    var fillStroke = L.Canvas.prototype._fillStroke;
    L.Canvas.prototype._fillStroke = function (ctx, layer) {
      if (layer.options && layer.options.knockout) {
        ctx.save();
        ctx.globalCompositeOperation = "destination-out";
        ctx.globalAlpha = 1;
        ctx.fillStyle = "#000";
        ctx.fill(layer.options.fillRule || "evenodd");
        ctx.restore();
      }
      return fillStroke.call(this, ctx, layer);
    };
    L.Canvas.prototype._atlasKnockout = true;
  }

  /* The scenario bands' own hideout (show, pane): the last one seen. */
  var bandsHideout = { show: true, pane: "atlas-surface" };
  var bandsDrawing = false;

  function markBands() {
    var d = window.atlas.drawn;
    if (!bandsDrawing) {
      bandsDrawing = true;
      Promise.resolve().then(function () { bandsDrawing = false; });
      d.scenarioBands = { t: (window.performance ? performance.now() : Date.now()), n: 0,
        draws: d.scenarioBands ? d.scenarioBands.draws + 1 : 1 };
    }
    d.scenarioBands.n += 1;
  }

  Object.assign(window.atlas, {
    /* A scenario's minute band (viewmodel/scenario_map.py): styled as the baseline's band of the
     * same minute under the surface's current hideout (threshold, layers, opacity), after
     * clearing the baseline beneath it, so the map is the one a full rebuild would draw. */
    scenarioBandStyle: function (feature, context) {
      knockoutCanvas();
      var own = context && context.hideout;
      if (own && own.scenarioLayer) { bandsHideout = own; }
      var h = window.atlas.latest.surface || window.atlas.surfaceSeen || {};
      var pane = h.pane || bandsHideout.pane || "atlas-surface";
      if (bandsHideout.show === false) { return Object.assign({}, HIDE, { pane: pane, knockout: false }); }
      markBands();
      var fill = window.atlas.bandFill((feature.properties || {}).m, h);
      var style = fill ? fill.style : { stroke: false, fill: true, fillColor: "#000", fillOpacity: 0, interactive: false };
      return Object.assign({}, style, { pane: pane, knockout: true });
    },

    /* Keep the scenario's bands above the baseline's after the baseline is drawn again. */
    scenarioToFront: function () {
      var map = window.atlas.map;
      if (!map) { return; }
      var mine = [];
      map.eachLayer(function (l) {
        if (l.feature && l.feature.properties && l.feature.properties.scn && l.bringToFront) { mine.push(l); }
      });
      mine.forEach(function (l) { l.bringToFront(); });
    },

    /* Outlines of the cells that left or entered the desert: the fills below are the
     * scenario's own bands and desert. */
    scenarioChangeStyle: function (feature, context) {
      var h = (context && context.hideout) || {};
      var p = feature.properties || {};
      if (h.show === false) { markScenario(null); return Object.assign({}, HIDE, { pane: h.pane }); }
      markScenario(p.kind);
      var c = h[p.kind] || ["#ffffff", "#000000"];
      var gain = p.kind === "gain";
      return { pane: h.pane, color: c[1], weight: gain ? 2 : 1.5, opacity: 0.95, dashArray: gain ? null : "4 3",
        fill: false, interactive: false };
    },

    scenarioSitePoint: function (feature, latlng, context) {
      var h = (context && context.hideout) || {};
      var p = feature.properties || {};
      if (h.show === false) { return nothing(latlng); }
      var st = (h.styles || {})[p.category] || { colour: "#333", shape: "circle", label: p.category };
      var added = p.status === "added";
      var label = (added ? "Hypothetical new site: " : "Closed in this scenario: ") + (p.name || "") +
        " — " + st.label + (p.relevant === false ? " (other care: not counted in the numbers shown)" : "");
      if (p.moved_m) { label += " — moved " + p.moved_m + " m onto the nearest street"; }
      if (p.approx) { label += " (shown only as an area: its place is approximate)"; }
      var cls = "atlas-scn-pin atlas-scn-pin--" + (added ? "added" : "closed") +
        (p.relevant === false ? " atlas-scn-pin--other" : "");
      var icon = L.divIcon({
        html: '<span class="' + cls + '">' + window.atlas.symbolSvg(st.shape, st.colour, 20) +
          '<b aria-hidden="true">' + (added ? "+" : "×") + "</b></span>",
        className: "atlas-scn-marker", iconSize: [30, 30], iconAnchor: [15, 15]
      });
      return L.marker(latlng, { icon: icon, title: label, alt: label, keyboard: true, zIndexOffset: 1000 })
        .bindTooltip(esc(label));
    },

    scenarioSuggestPoint: function (feature, latlng, context) {
      var h = (context && context.hideout) || {};
      var p = feature.properties || {};
      if (h.show === false) { return nothing(latlng); }
      var label = "Suggested site " + p.rank + ": brings " + Number(p.people_added).toLocaleString("en-US") +
        " more people within reach";
      var icon = L.divIcon({ html: '<span class="atlas-scn-suggest">' + esc(p.rank) + "</span>",
        className: "atlas-scn-marker", iconSize: [30, 30], iconAnchor: [15, 15] });
      return L.marker(latlng, { icon: icon, title: label, alt: label, keyboard: true, zIndexOffset: 900 })
        .bindTooltip(esc(label));
    }
  });

  var ADD_ON = "Adding: click the map where a new site would open (Esc stops). With the keyboard: " +
    "move the map with the arrow keys, then press “Add at the map centre”.";
  var ADD_OFF = "Switch on, then click the map where a new site would open. With the keyboard: " +
    "move the map with the arrow keys and press “Add at the map centre”.";

  window.dash_clientside = window.dash_clientside || {};
  window.dash_clientside.atlas = Object.assign(window.dash_clientside.atlas || {}, {
    /* The add-mode switch: a pressed button, a crosshair and a banner over the map. */
    scenarioAddMode: function (n, on) {
      var next = !on;
      document.body.classList.toggle("atlas-adding", next);
      var b = document.getElementById("scenario-add-toggle");
      if (b) { b.setAttribute("aria-pressed", next ? "true" : "false"); }
      return [next, next ? "Stop adding sites" : "Add sites by clicking the map", next ? ADD_ON : ADD_OFF];
    },

    /* Bring the new numbers into view when the panel is open (the side panel scrolls). */
    scenarioReveal: function (children) {
      var section = document.getElementById("scenario-section");
      var lead = document.getElementById("scenario-lead");
      if (section && section.open && lead && lead.scrollIntoView) {
        window.setTimeout(function () { lead.scrollIntoView({ block: "nearest", behavior: "smooth" }); }, 50);
      }
      return window.dash_clientside.no_update;
    },

    /* Show or hide the scenario's layers on the map (the numbers stay). */
    scenarioShow: function (value, h1, h2, h3, h4) {
      var show = (value || []).indexOf("show") >= 0;
      bandsHideout = Object.assign({}, h4, { show: show });
      return [Object.assign({}, h1, { show: show }), Object.assign({}, h2, { show: show }),
              Object.assign({}, h3, { show: show }), bandsHideout];
    },

    /* The area layer's colours follow the scenario (its values in the hideout; null: the
     * baseline), and the legend says which scenario the map shows. */
    scenarioAreas: function (data, value, hideout) {
      var show = (value || []).indexOf("show") >= 0 && !!data;
      var next = show ? { prop: data.prop, areas: data.areas || {}, grid: data.grid || {} } : null;
      var prev = (hideout || {}).scenario || null;
      var same = JSON.stringify(prev) === JSON.stringify(next);
      var text = show ? (data.showing || "Showing: a scenario") : "";
      return [same ? window.dash_clientside.no_update : Object.assign({}, hideout, { scenario: next }),
              text, !show];
    }
  });

  document.addEventListener("keydown", function (e) {
    if (e.key === "Escape" && document.body.classList.contains("atlas-adding")) {
      var b = document.getElementById("scenario-add-toggle");
      if (b) { b.click(); } else { document.body.classList.remove("atlas-adding"); }
    }
  });

  /* In add mode a click on the map adds a site there (and does nothing else: no details of
   * the place); a drag still pans. The zoom buttons and other controls keep working. */
  var down = null;
  var addCount = 0;
  document.addEventListener("pointerdown", function (e) { down = [e.clientX, e.clientY]; }, true);
  document.addEventListener("click", function (e) {
    if (!document.body.classList.contains("atlas-adding")) { return; }
    var el = document.getElementById("map");
    var map = window.atlas.map;
    if (!map || !el || !el.contains(e.target) || !window.dash_clientside.set_props) { return; }
    if (e.target.closest && e.target.closest(".leaflet-control")) { return; }
    e.stopPropagation();
    e.preventDefault();
    if (down && Math.abs(down[0] - e.clientX) + Math.abs(down[1] - e.clientY) > 6) { return; }  // a drag
    var ll = map.mouseEventToLatLng(e);
    addCount += 1;
    window.dash_clientside.set_props("scenario-action", { data: {
      kind: "add", lon: ll.lng, lat: ll.lat, n: addCount } });
  }, true);

  /* "What if this site closed?" (a button in a site's details, layouts/scenario.py). */
  document.addEventListener("click", function (e) {
    var b = e.target && e.target.closest ? e.target.closest(".atlas-scenario-close") : null;
    if (!b || !window.dash_clientside.set_props) { return; }
    closeCount += 1;
    window.dash_clientside.set_props("scenario-action", { data: {
      kind: "close", id: b.getAttribute("data-site-id"), n: closeCount } });
    b.textContent = "Closed in the What-if panel";
    b.disabled = true;
    var panel = document.getElementById("scenario-section");
    if (panel) { panel.open = true; }
    if (panel && panel.scrollIntoView) { panel.scrollIntoView({ block: "start", behavior: "smooth" }); }
  });
}());

/* --- town hall --- */
/* Town-hall mode (layouts/townhall.py, callbacks/townhall.py): the slides of /present, stepped
 * with the keyboard (→, ↓, PageDown, Space: next; ←, ↑, PageUp, Shift+Space: back; Home, End;
 * F: full screen; Esc: leave) or the buttons. Every view's layer settings come in the page's
 * `data-deck` attribute; a step sets them with dash_clientside.set_props (no server round
 * trip), shows its slide and legend and flies the map there, keeping the view clear of the
 * title, the slide and the legend. The presentation's components have ids of their own
 * ("present-…"). window.atlas.present records the slide shown (tests). Also the export
 * download: an <a download> for the URL of a file the server prepared. */
(function () {
  "use strict";

  var P = "present-";
  var deck = null;

  function setProps(id, props) {
    if (window.dash_clientside && window.dash_clientside.set_props) {
      window.dash_clientside.set_props(id, props);
    }
  }

  function load() {
    var el = document.getElementById("present");
    if (!el) { deck = null; return null; }
    if (!deck || deck.el !== el) {
      try { deck = JSON.parse(el.getAttribute("data-deck") || "{}"); } catch (e) { deck = null; return null; }
      if (!deck.views || !deck.views.length) { deck = null; return null; }
      deck.el = el;
      deck.current = deck.index || 0;
      deck.framed = false;
      window.atlas.present = { index: deck.current, n: deck.views.length, steps: 0, framed: 0 };
    }
    return deck;
  }

  function theMap() {
    var map = window.atlas && window.atlas.map;
    var el = document.getElementById(P + "map");
    return (map && el && map.getContainer && map.getContainer() === el) ? map : null;
  }

  /* Street names and minor streets follow the zoom (the map page does this in mapState). */
  function streets(view, zoom) {
    var p = view.props || {};
    var major = p[P + "layer-streets-major"];
    var show = !!(major && major.hideout && major.hideout.show);
    var labels = p[P + "layer-labels"];
    if (labels) {
      setProps(P + "layer-labels", { hideout: Object.assign({}, labels.hideout, { show: show, zoom: Math.floor(zoom) }) });
    }
    var minor = p[P + "layer-streets-minor"];
    if (minor) {
      var on = show && zoom >= 13;
      var props = { hideout: Object.assign({}, minor.hideout, { show: on }) };
      if (on && deck.minor) { props.url = deck.minor; }
      setProps(P + "layer-streets-minor", props);
    }
  }

  /* Padding that keeps a framed view clear of the slide band, the legend and the buttons. */
  function padding() {
    var el = deck && deck.el;
    function box(sel) { var n = el && el.querySelector(sel); return n ? n.getBoundingClientRect() : null; }
    var band = box(".atlas-present-band"), legend = box(".atlas-present-legend"), nav = box(".atlas-present-nav");
    var W = window.innerWidth, H = window.innerHeight;
    var pt = band ? band.bottom + 16 : 24;
    var pb = nav ? H - nav.top + 12 : 24;
    var pr = (legend && legend.width > 0) ? W - legend.left + 16 : 24;
    if (pt + pb > H * 0.75) { pb = Math.max(16, H * 0.75 - pt); }
    if (pr > W * 0.45) { pr = 24; }
    return { paddingTopLeft: [24, pt], paddingBottomRight: [pr, pb] };
  }

  /* Move the map to a view: its bounds, or its centre shown in the middle of the clear area. */
  function frame(view, animate) {
    var map = theMap();
    var vp = view.viewport || {};
    if (!map) {
      if (vp.bounds || vp.center) { setProps(P + "map", { viewport: vp }); }
      return false;
    }
    var pad = padding();
    var opts = { animate: animate, duration: animate ? 1.0 : 0 };
    if (vp.center && vp.zoom != null && deck.bounds) {
      // A view saved on the map page at a zoom that shows the whole region there shows the
      // whole region here too (the screen is bigger than the map page's map).
      var total = L.point(pad.paddingTopLeft[0] + pad.paddingBottomRight[0],
                          pad.paddingTopLeft[1] + pad.paddingBottomRight[1]);
      var inside = L.latLngBounds(deck.bounds).contains(L.latLng(vp.center));
      if (inside && vp.zoom <= Math.floor(map.getBoundsZoom(deck.bounds, false, total))) {
        vp = { bounds: deck.bounds };
      }
    }
    if (vp.bounds) {
      var o = Object.assign({}, pad, opts);
      if (animate) { map.flyToBounds(vp.bounds, o); } else { map.fitBounds(vp.bounds, o); }
    } else if (vp.center) {
      var z = vp.zoom == null ? map.getZoom() : vp.zoom;
      var shift = L.point((pad.paddingBottomRight[0] - pad.paddingTopLeft[0]) / 2,
                          (pad.paddingBottomRight[1] - pad.paddingTopLeft[1]) / 2);
      var c = map.unproject(map.project(L.latLng(vp.center), z).add(shift), z);
      if (animate) { map.flyTo(c, z, opts); } else { map.setView(c, z, { animate: false }); }
    }
    window.atlas.present.framed += 1;
    window.atlas.present.flying = !!animate;
    return true;
  }

  function go(i) {
    var d = load();
    if (!d) { return; }
    i = Math.max(0, Math.min(d.views.length - 1, i));
    if (i === d.current) { return; }
    var prev = d.current;
    var v = d.views[i];
    Object.keys(v.props || {}).forEach(function (id) {
      if (id === P + "layer-labels" || id === P + "layer-streets-minor") { return; }
      var p = v.props[id];
      var props = { hideout: p.hideout };
      if (p.url) { props.url = p.url; }
      // The style functions read these first (a hideout dash-leaflet drops while it fetches).
      if (id === P + "layer-surface") { window.atlas.latest.surface = p.hideout; }
      if (id === P + "layer-sites") { window.atlas.latest.sites = p.hideout; }
      setProps(id, props);
    });
    setProps("present-slide-" + prev, { hidden: true });
    setProps("present-slide-" + i, { hidden: false });
    setProps("present-legend-" + prev, { hidden: true });
    setProps("present-legend-" + i, { hidden: false });
    setProps("present-leave", { href: v.href });
    d.current = i;
    window.atlas.present.index = i;
    window.atlas.present.steps += 1;
    // Frame once the new slide is laid out (its height decides the padding).
    window.setTimeout(function () {
      if (deck === d && d.current === i) {
        frame(v, true);
        var map = theMap();
        if (map) { streets(v, v.viewport && v.viewport.zoom != null ? v.viewport.zoom : map.getZoom()); }
      }
    }, 60);
    try {
      window.history.replaceState(null, "", window.location.pathname + "?region=" +
        encodeURIComponent(d.region) + "&view=" + (i + 1));
    } catch (e) { /* sandboxed */ }
  }

  /* Once the map exists: frame the first view and follow the zoom. */
  window.setInterval(function () {
    var d = load();
    var map = d ? theMap() : null;
    if (!map || d.hooked === map) { return; }
    d.hooked = map;
    map.on("zoomend", function () {
      if (deck === d) { streets(d.views[d.current], map.getZoom()); }
    });
    map.on("moveend", function () { window.atlas.present.flying = false; });
    frame(d.views[d.current], false);
    streets(d.views[d.current], map.getZoom());
  }, 250);

  function fullScreen() {
    var doc = document;
    try {
      if (doc.fullscreenElement) { doc.exitFullscreen(); return; }
      var p = doc.documentElement.requestFullscreen && doc.documentElement.requestFullscreen();
      if (p && p.catch) { p.catch(function () { /* refused: stay in the window */ }); }
    } catch (e) { /* not supported */ }
  }

  function leave() {
    var d = load();
    if (d) { window.location.assign(d.views[d.current].href || d.leave || "/"); }
  }

  document.addEventListener("keydown", function (e) {
    var d = load();
    if (!d || e.altKey || e.ctrlKey || e.metaKey || e.defaultPrevented) { return; }
    var t = e.target || {};
    var tag = t.tagName || "";
    if (tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || t.isContentEditable) { return; }
    var onControl = tag === "BUTTON" || tag === "A";
    switch (e.key) {
      case "ArrowRight": case "ArrowDown": case "PageDown": case "Right": case "Down":
        go(d.current + 1); break;
      case "ArrowLeft": case "ArrowUp": case "PageUp": case "Left": case "Up":
        go(d.current - 1); break;
      case " ": case "Spacebar":
        if (onControl) { return; }
        go(d.current + (e.shiftKey ? -1 : 1)); break;
      case "Home": go(0); break;
      case "End": go(d.views.length - 1); break;
      case "f": case "F": fullScreen(); break;
      case "Escape": case "Esc":
        if (document.fullscreenElement) { return; }
        leave(); break;
      default: return;
    }
    e.preventDefault();
  });

  document.addEventListener("click", function (e) {
    var b = e.target && e.target.closest ? e.target.closest("[data-present]") : null;
    var d = b ? load() : null;
    if (!d) { return; }
    var what = b.getAttribute("data-present");
    if (what === "next") { go(d.current + 1); }
    else if (what === "prev") { go(d.current - 1); }
    else if (what === "full") { fullScreen(); }
  });

  window.atlas.presentGo = go;

  window.dash_clientside = window.dash_clientside || {};
  window.dash_clientside.atlasTownhall = Object.assign({}, window.dash_clientside.atlasTownhall, {
    /* Start the download of an export the server prepared (callbacks/downloads.py). */
    download: function (link) {
      if (!link || !link.href) { return window.dash_clientside.no_update; }
      var a = document.createElement("a");
      a.href = link.href;
      a.download = link.name || "";
      a.rel = "noopener";
      a.style.display = "none";
      document.body.appendChild(a);
      a.click();
      a.remove();
      return link.t;
    }
  });
}());
