/* Carnet charts (PRF-2): draws the medical profile's measures with uPlot.
 *
 * No build step, plain ES2017, no inline script or style attribute (CSP
 * script-src 'self'; style-src 'self'): element.style is only set from here.
 * Load after vendor/uplot/uPlot.iife.min.js (and link vendor/uplot/uPlot.min.css).
 *
 * Markup written by the page (the same values are in an accessible table
 * next to the figure, so the drawn chart is aria-hidden):
 *
 *   <figure class="carnet-chart">
 *     <figcaption>Poids</figcaption>
 *     <script type="application/json" class="carnet-chart__data">{...}</script>
 *     ... the accessible table ...
 *   </figure>
 *
 * The JSON:
 *   {"title": "Poids", "unit": "kg",
 *    "x": "time" (default: x values are epoch seconds) | "number",
 *    "x_label": "Âge (mois)"                          (optional axis and legend label of x),
 *    "series": [{"label": "Poids", "points": [[x, value], ...]}, ...],
 *    "bands":  [{"label": "97e percentile", "short": "97e", "points": [[x, value], ...]}, ...]}
 * "bands" (optional) are reference curves, drawn dashed and grey, named at
 * their right end by "short" (default: the first word of "label") and left
 * out of the legend. A value may be null (a gap). With "x": "number" the
 * ticks fall on ages in months (3, 6, 12, 24... months). The chart goes into the
 * figure's .carnet-chart__plot element, created after the figcaption when
 * the page has none. Figures added later by htmx are drawn on htmx:load.
 */
(function () {
  "use strict";

  var LOCALE = "fr-FR";
  var SERIES_COLOURS = ["#000091", "#b34000", "#18753c", "#6a6af4"];
  var BAND_COLOUR = "#8a8a8a";
  var AXIS_COLOUR = "#3a3a3a";
  var GRID_COLOUR = "#e5e5e5";
  var DAY = 86400;
  var MIN_HEIGHT = 220;
  var MAX_HEIGHT = 380;
  /* Tick steps of a numeric x axis, made for ages in months (3 months, 6, 1 year, 2 years...). */
  var AGE_STEPS = [0.25, 0.5, 1, 2, 3, 6, 12, 24, 36, 48, 60, 120, 240, 600, 1200];

  var fmtYear = new Intl.DateTimeFormat(LOCALE, { year: "numeric" });
  var fmtMonth = new Intl.DateTimeFormat(LOCALE, { month: "short" });
  var fmtMonthYear = new Intl.DateTimeFormat(LOCALE, { month: "short", year: "numeric" });
  var fmtDay = new Intl.DateTimeFormat(LOCALE, { day: "numeric", month: "short" });
  var fmtDayYear = new Intl.DateTimeFormat(LOCALE, { day: "numeric", month: "short", year: "numeric" });
  var fmtTime = new Intl.DateTimeFormat(LOCALE, { hour: "2-digit", minute: "2-digit" });
  var fmtFull = new Intl.DateTimeFormat(LOCALE, {
    day: "numeric", month: "long", year: "numeric", hour: "2-digit", minute: "2-digit"
  });
  var fmtFullDay = new Intl.DateTimeFormat(LOCALE, { day: "numeric", month: "long", year: "numeric" });
  var numberFormats = {};

  function fmtNumber(value, decimals) {
    var key = String(decimals);
    if (!numberFormats[key]) {
      numberFormats[key] = new Intl.NumberFormat(LOCALE, { maximumFractionDigits: decimals });
    }
    return numberFormats[key].format(value);
  }

  /* Decimals needed to show an axis step (0.25 -> 2, 5 -> 0). */
  function stepDecimals(step) {
    if (!isFinite(step) || step <= 0) return 2;
    var d = 0;
    while (d < 6 && Math.abs(Math.round(step * Math.pow(10, d)) - step * Math.pow(10, d)) > 1e-9) d++;
    return d;
  }

  function dateOf(seconds) { return new Date(seconds * 1000); }

  /* French tick labels for a time axis, by the step uPlot chose. */
  function timeTicks(u, splits, axisIdx, space, incr) {
    var previousYear = null;
    return splits.map(function (s, i) {
      if (s == null) return null;
      var d = dateOf(s);
      var year = d.getFullYear();
      var newYear = year !== previousYear;
      previousYear = year;
      if (incr >= 360 * DAY) return fmtYear.format(d);
      if (incr >= 28 * DAY) return (i === 0 || newYear) ? fmtMonthYear.format(d) : fmtMonth.format(d);
      if (incr >= DAY) return (i === 0 || newYear) ? fmtDayYear.format(d) : fmtDay.format(d);
      return (i === 0 || (d.getHours() === 0 && d.getMinutes() === 0)) ?
        fmtDay.format(d) + " " + fmtTime.format(d) : fmtTime.format(d);
    });
  }

  function numberTicks(u, splits, axisIdx, space, incr) {
    var decimals = stepDecimals(incr);
    return splits.map(function (v) { return v == null ? null : fmtNumber(v, decimals); });
  }

  function valueDecimals(spec) {
    var max = 0;
    (spec.series || []).forEach(function (s) {
      (s.points || []).forEach(function (p) {
        if (typeof p[1] === "number") max = Math.max(max, stepDecimals(Math.abs(p[1])));
      });
    });
    return Math.min(max, 3);
  }

  /* Series and bands on one x axis: the union of their x values, null where a line has no point. */
  function alignedData(lines) {
    var xs = [];
    var seen = {};
    lines.forEach(function (line) {
      line.forEach(function (p) {
        if (!seen.hasOwnProperty(p[0])) { seen[p[0]] = true; xs.push(p[0]); }
      });
    });
    xs.sort(function (a, b) { return a - b; });
    var index = {};
    xs.forEach(function (x, i) { index[x] = i; });
    var data = [xs];
    lines.forEach(function (line) {
      var ys = new Array(xs.length).fill(null);
      line.forEach(function (p) { ys[index[p[0]]] = (typeof p[1] === "number" && isFinite(p[1])) ? p[1] : null; });
      data.push(ys);
    });
    return data;
  }

  function cleanPoints(points) {
    return (Array.isArray(points) ? points : []).filter(function (p) {
      return Array.isArray(p) && typeof p[0] === "number" && isFinite(p[0]);
    });
  }

  function shortName(band) {
    if (typeof band.short === "string") return band.short;
    return String(band.label || "").split(/\s+/)[0];
  }

  /* Names each reference curve at its last drawn point, right-aligned inside the plot; names that would
   * overlap are pushed apart vertically (one line height each). */
  function bandNamesHook(firstBand, names, fontSize) {
    return function (u) {
      var dpr = window.devicePixelRatio || 1;
      var lineHeight = (fontSize + 1) * dpr;
      var right = u.bbox.left + u.bbox.width - 2 * dpr;
      var top = u.bbox.top + lineHeight;
      var bottom = u.bbox.top + u.bbox.height;
      var labels = [];
      names.forEach(function (name, i) {
        var si = firstBand + i;
        if (!name || !u.series[si].show) return;
        var ys = u.data[si];
        for (var j = ys.length - 1; j >= 0; j--) {
          if (ys[j] == null) continue;
          labels.push({
            name: name,
            x: Math.min(u.valToPos(u.data[0][j], "x", true), right),
            y: u.valToPos(ys[j], "y", true) - dpr
          });
          return;
        }
      });
      labels.sort(function (a, b) { return a.y - b.y; });
      var k;
      for (k = 0; k < labels.length; k++) {
        labels[k].y = Math.max(labels[k].y, k ? labels[k - 1].y + lineHeight : top);
      }
      for (k = labels.length - 1; k >= 0; k--) {
        labels[k].y = Math.min(labels[k].y, k < labels.length - 1 ? labels[k + 1].y - lineHeight : bottom);
      }
      var ctx = u.ctx;
      ctx.save();
      ctx.font = pageFont(fontSize * dpr);
      ctx.fillStyle = AXIS_COLOUR;
      ctx.textAlign = "right";
      ctx.textBaseline = "bottom";
      labels.forEach(function (l) { if (l.y >= u.bbox.top) ctx.fillText(l.name, l.x, l.y); });
      ctx.restore();
    };
  }

  function chartHeight(width) {
    return Math.round(Math.max(MIN_HEIGHT, Math.min(MAX_HEIGHT, width * 0.6)));
  }

  function pageFont(size, weight) {
    var family = getComputedStyle(document.documentElement).getPropertyValue("--font").trim() ||
      "system-ui, sans-serif";
    return (weight ? weight + " " : "") + size + "px " + family;
  }

  function buildOptions(spec, width) {
    var isTime = spec.x !== "number";
    var unit = typeof spec.unit === "string" ? spec.unit : "";
    var decimals = valueDecimals(spec);
    var seriesSpecs = Array.isArray(spec.series) ? spec.series : [];
    var bandSpecs = Array.isArray(spec.bands) ? spec.bands : [];
    var axisFont = pageFont(12);
    var suffix = unit ? "\u00a0" + unit : "";

    var xLabel = typeof spec.x_label === "string" ? spec.x_label : (isTime ? "Date" : "");
    var series = [{
      label: xLabel,
      value: function (u, v) {
        if (v == null) return "–";
        if (!isTime) return fmtNumber(v, 1);
        var d = dateOf(v);
        return (d.getHours() || d.getMinutes()) ? fmtFull.format(d) : fmtFullDay.format(d);
      }
    }];
    seriesSpecs.forEach(function (s, i) {
      var colour = SERIES_COLOURS[i % SERIES_COLOURS.length];
      series.push({
        label: String(s.label || ""),
        stroke: colour,
        width: 2,
        spanGaps: true,
        points: { show: true, size: 7, stroke: colour, fill: i % 2 ? "#fff" : colour, width: 2 },
        value: function (u, v) { return v == null ? "–" : fmtNumber(v, decimals) + suffix; }
      });
    });
    bandSpecs.forEach(function (b, i) {
      var middle = i === Math.floor(bandSpecs.length / 2);
      series.push({
        label: String(b.label || ""),
        stroke: middle ? "#666" : BAND_COLOUR,
        width: 1,
        dash: middle ? [8, 4] : [4, 4],
        spanGaps: true,
        points: { show: false },
        value: function (u, v) { return v == null ? "–" : fmtNumber(v, 1) + suffix; }
      });
    });

    var axisBase = { stroke: AXIS_COLOUR, font: axisFont, labelFont: pageFont(12, 600),
      grid: { stroke: GRID_COLOUR, width: 1 }, ticks: { stroke: GRID_COLOUR, width: 1, size: 4 } };
    var xAxis = Object.assign({}, axisBase, {
      values: isTime ? timeTicks : numberTicks,
      space: isTime ? 70 : 36,
      size: 36
    });
    if (!isTime) xAxis.incrs = AGE_STEPS;
    if (xLabel && !isTime) { xAxis.label = xLabel; xAxis.labelSize = 20; }
    var yAxis = Object.assign({}, axisBase, {
      values: numberTicks,
      space: 30,
      size: function (u, values) {
        if (!values) return 40;
        var longest = values.reduce(function (m, v) { return Math.max(m, String(v || "").length); }, 0);
        return Math.max(36, longest * 7 + 14);
      }
    });
    if (unit) { yAxis.label = unit; yAxis.labelSize = 18; }

    var bandNames = bandSpecs.map(shortName);
    return {
      width: width,
      height: chartHeight(width),
      series: series,
      scales: { x: { time: isTime } },
      axes: [xAxis, yAxis],
      cursor: { drag: { x: false, y: false }, points: { size: 8 } },
      legend: { live: true },
      padding: [12, isTime ? 32 : 16, 0, 0],
      hooks: { draw: [bandNamesHook(1 + seriesSpecs.length, bandNames, 11)] }
    };
  }

  function hideBandLegend(u, firstBand) {
    var rows = u.root.querySelectorAll(".u-legend .u-series");
    for (var i = firstBand; i < rows.length; i++) rows[i].style.display = "none";
  }

  function plotElement(figure) {
    var plot = figure.querySelector(".carnet-chart__plot");
    if (!plot) {
      plot = document.createElement("div");
      plot.className = "carnet-chart__plot";
      var caption = figure.querySelector(":scope > figcaption");
      if (caption && caption === figure.firstElementChild) caption.insertAdjacentElement("afterend", plot);
      else figure.insertBefore(plot, figure.firstChild);
    }
    plot.setAttribute("aria-hidden", "true");
    return plot;
  }

  function readSpec(figure) {
    var script = figure.querySelector("script.carnet-chart__data[type='application/json']");
    if (!script) return null;
    var spec = JSON.parse(script.textContent);
    if (!spec || typeof spec !== "object") return null;
    spec.series = (Array.isArray(spec.series) ? spec.series : []).map(function (s) {
      return { label: s && s.label, points: cleanPoints(s && s.points) };
    });
    spec.bands = (Array.isArray(spec.bands) ? spec.bands : []).map(function (b) {
      return { label: b && b.label, short: b && b.short, points: cleanPoints(b && b.points) };
    });
    var hasPoint = spec.series.concat(spec.bands).some(function (s) { return s.points.length > 0; });
    return hasPoint ? spec : null;
  }

  function draw(figure) {
    if (figure.dataset.carnetChart) return;
    var spec;
    try {
      spec = readSpec(figure);
    } catch (e) {
      figure.dataset.carnetChart = "invalid";
      if (window.console) console.warn("carnet-chart: données illisibles", e);
      return;
    }
    if (!spec) { figure.dataset.carnetChart = "empty"; return; }
    figure.dataset.carnetChart = "pending";
    var plot = plotElement(figure);
    var chart = null;
    var drawnWidth = 0;

    function render() {
      var width = Math.floor(plot.clientWidth);
      if (width <= 0 || width === drawnWidth) return;
      drawnWidth = width;
      if (chart) {
        chart.setSize({ width: width, height: chartHeight(width) });
        return;
      }
      var lines = spec.series.concat(spec.bands).map(function (s) { return s.points; });
      chart = new uPlot(buildOptions(spec, width), alignedData(lines), plot);
      hideBandLegend(chart, 1 + spec.series.length);
      figure.dataset.carnetChart = "drawn";
    }

    if (typeof ResizeObserver === "function") {
      new ResizeObserver(function () { window.requestAnimationFrame(render); }).observe(plot);
    } else {
      window.addEventListener("resize", function () { window.requestAnimationFrame(render); });
    }
    render();
  }

  function drawAll(root) {
    if (typeof uPlot !== "function" || !root || !root.querySelectorAll) return;
    var figures = root.querySelectorAll("figure.carnet-chart");
    for (var i = 0; i < figures.length; i++) draw(figures[i]);
    if (root.matches && root.matches("figure.carnet-chart")) draw(root);
  }

  function start() { drawAll(document); }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
  document.addEventListener("htmx:load", function (event) { drawAll(event.target); });
})();
