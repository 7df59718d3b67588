/* Access Atlas, re-entry: the facilities layer's markers (see layouts/reentry.py).
 *
 * A prison, jail or detention centre is a dark square with a white door; one whose releases
 * land in a desert has a ring in the desert colour. Selecting one (click, or Enter on the
 * focused marker) fills the "Release day" panel through the layer's clickData.
 */
(function () {
  "use strict";

  var ICON = '<svg viewBox="0 0 20 20" width="18" height="18" aria-hidden="true">' +
    '<rect x="2" y="2" width="16" height="16" rx="2" fill="#3b3b3b" stroke="#fff" stroke-width="1.5"/>' +
    '<path d="M6 5 V15 M10 5 V15 M14 5 V15" stroke="#fff" stroke-width="1.4"/></svg>';

  function facilityText(p) {
    var kind = { prison: "Prison", jail: "Jail", detention: "Detention centre" }[p.kind] || "Facility";
    var text = (p.name || "Facility") + " (" + kind + ")";
    if (p.in_desert) { text += " — releases land in a desert"; }
    return text + ". Select for release day.";
  }

  window.atlas = Object.assign({}, window.atlas, {
    facilityPoint: function (feature, latlng) {
      var p = feature.properties || {};
      var cls = "atlas-facility" + (p.in_desert ? " atlas-facility--desert" : "");
      var icon = L.divIcon({ className: cls, html: ICON, iconSize: [22, 22], iconAnchor: [11, 11] });
      var text = facilityText(p);
      return L.marker(latlng, { icon: icon, keyboard: true, title: text, alt: text, riseOnHover: true, zIndexOffset: 500 })
        .bindTooltip(text);
    }
  });

  /* The facilities layer follows the layer switches: fetched when first shown, then hidden
   * through its hideout (callbacks/reentry.py). */
  window.dash_clientside = window.dash_clientside || {};
  window.dash_clientside.atlasReentry = Object.assign({}, window.dash_clientside.atlasReentry, {
    facilitiesShown: function (layers, store, hideout, url) {
      var nu = window.dash_clientside.no_update;
      var show = (layers || []).indexOf("facilities") >= 0;
      var want = (store && store.urls && store.urls.facilities) || null;
      var newUrl = (show || url) ? want : null;
      var h = (hideout && hideout.show === show) ? nu : Object.assign({}, hideout, { show: show });
      return [newUrl === url ? nu : newUrl, h];
    }
  });
})();
