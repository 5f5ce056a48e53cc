// The map page of `rs-effnet view`. Its data (tile folders, outlines, colours) is in data.js, written by the
// command; this file only draws it with Leaflet, which ships beside it.
(function () {
  "use strict";
  var data = window.RS_VIEW;
  // minZoom 0: one can zoom out past the imagery to the markers of where the tiles are (below).
  var map = L.map("map", { zoomSnap: 0.25, attributionControl: false, minZoom: 0 });
  window.RS_VIEW_MAP = map;  // for the browser's console
  var overlays = {};

  function tiles(layer, options) {
    return L.tileLayer(layer.url, Object.assign({
      minNativeZoom: layer.minZoom, maxNativeZoom: layer.maxZoom,
      minZoom: Math.max(0, layer.minZoom - 4), maxZoom: layer.maxZoom + 4,
      bounds: data.bounds, tileSize: 256, noWrap: true,
    }, options || {}));
  }

  var base = tiles(data.images).addTo(map);

  if (data.masks) {
    var masks = tiles(data.masks, { opacity: data.opacity }).addTo(map);
    overlays["masks"] = masks;
    var slider = L.control({ position: "topright" });
    slider.onAdd = function () {
      var div = L.DomUtil.create("div", "rs-panel rs-opacity");
      div.innerHTML = '<label>mask opacity <input type="range" min="0" max="100" value="' +
        Math.round(data.opacity * 100) + '"></label>';
      var input = div.querySelector("input");
      L.DomEvent.disableClickPropagation(div);
      input.addEventListener("input", function () { masks.setOpacity(input.value / 100); });
      return div;
    };
    slider.addTo(map);
  }

  function escape(text) {
    return String(text).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }

  function popup(feature) {
    var rows = Object.keys(feature.properties || {}).map(function (key) {
      var value = feature.properties[key];
      if (typeof value === "number" && !Number.isInteger(value)) { value = value.toFixed(3); }
      return "<tr><td>" + escape(key) + "</td><td>" + escape(value) + "</td></tr>";
    });
    return '<div class="rs-popup"><table>' + rows.join("") + "</table></div>";
  }

  function outlines(name, geojson, dash) {
    var layer = L.geoJSON(geojson, {
      style: function (feature) {
        var match = data.scored ? feature.properties.match : name;  // a file's own "match" is only text
        return { color: data.colors[match], weight: 3, opacity: 1, fill: true, fillOpacity: 0.08,
                 dashArray: dash };
      },
      onEachFeature: function (feature, shape) { shape.bindPopup(popup(feature)); },
    }).addTo(map);
    overlays[name] = layer;
  }

  if (data.truth) { outlines("truth", data.truth, "6 4"); }
  if (data.outlines) { outlines("outlines", data.outlines, null); }
  L.control.layers({ imagery: base }, overlays, { collapsed: false }).addTo(map);

  var legend = L.control({ position: "bottomright" });
  legend.onAdd = function () {
    var div = L.DomUtil.create("div", "rs-panel rs-legend");
    var html = "";
    if (data.masks) {
      html += "<h4>mask classes</h4>";
      data.masks.classes.forEach(function (c) {
        html += '<div><span class="rs-swatch" style="background:' + c.color + '"></span>' + escape(c.name) +
          "</div>";
      });
    }
    if (data.outlines || data.truth) {
      html += "<h4>outlines</h4>";
      data.legend.forEach(function (entry) {
        html += '<div><span class="rs-line" style="border-color:' + data.colors[entry.key] + '"></span>' +
          escape(entry.label) + "</div>";
      });
    }
    if (data.groups.length > 1) {
      html += "<h4>tiles</h4><div>in " + data.groups.length + " places: zoom out for a marker on each</div>";
    }
    div.innerHTML = html;
    return div;
  };
  legend.addTo(map);

  // Where the tiles are: page.py groups neighbouring tiles, largest first. The page opens on the largest; at
  // zooms too low to draw imagery, a marker shows each group, and a click goes there.
  var lowest = Math.max(0, data.images.minZoom - 4);
  function show(group) {  // all of the group where it fits at a zoom that draws imagery, else its middle tile
    if (map.getBoundsZoom(group.bounds) >= lowest) { map.fitBounds(group.bounds); }
    else { map.setView(group.center, lowest); }
  }
  var places = L.layerGroup(data.groups.map(function (group) {
    return L.circleMarker(group.center, { radius: 8, weight: 2, color: "#fff", fillColor: "#3388ff",
                                          fillOpacity: 1, className: "rs-group" })
      .bindTooltip(group.tiles + (group.tiles === 1 ? " tile" : " tiles") + ": click to go there")
      .on("click", function () { show(group); });
  }));
  map.on("zoomend", function () {
    if (map.getZoom() < lowest) { places.addTo(map); } else { places.remove(); }
  });
  show(data.groups[0]);
})();
