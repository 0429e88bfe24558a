// Campaign report: draws the charts from the report's data (the page's JSON script element)
// with the Chart.js inlined before this script. The numbers themselves are in the page's
// tables, so the report stays readable where scripts do not run.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("report-data").textContent);
  var colors = {
    completed: "#2f9e44",
    failed: "#c92a2a",
    pending: "#868e96",
    duplicate: "#adb5bd",
    first: "#1c7ed6",
    redial: "#f08c00",
    scheduled: "#7048e8",
    live: "#1c7ed6",
    waiting: "#f08c00",
    limited: "#e8590c",
    wait: "#5f3dc4",
  };
  // A report is a document: drawn once, at once (no animation to wait for when printing
  // or taking a screenshot).
  Chart.defaults.animation = false;
  Chart.defaults.maintainAspectRatio = false;
  Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;

  function chart(id, config) {
    var canvas = document.getElementById(id);
    if (canvas) {
      new Chart(canvas, config);
    }
  }

  function bars(labels, values, barColors, label) {
    return {
      type: "bar",
      data: { labels: labels, datasets: [{ label: label, data: values, backgroundColor: barColors }] },
      options: {
        indexAxis: "y",
        plugins: { legend: { display: false } },
        scales: { x: { beginAtZero: true, ticks: { precision: 0 } } },
      },
    };
  }

  // Outcomes: completed, each failure reason, pending, duplicates.
  var labels = [], values = [], fills = [];
  function outcome(label, count, color) {
    if (count > 0) {
      labels.push(label);
      values.push(count);
      fills.push(color);
    }
  }
  outcome("completed", data.completed, colors.completed);
  Object.keys(data.failed_by_reason).forEach(function (reason) {
    outcome("failed: " + reason, data.failed_by_reason[reason], colors.failed);
  });
  outcome("pending", data.pending, colors.pending);
  outcome("duplicate", data.duplicates, colors.duplicate);
  chart("chart-outcomes", bars(labels, values, fills, "items"));

  var attempts = Object.keys(data.attempts_per_item);
  chart("chart-attempts", {
    type: "bar",
    data: {
      labels: attempts,
      datasets: [{
        label: "items",
        data: attempts.map(function (k) { return data.attempts_per_item[k]; }),
        backgroundColor: colors.first,
      }],
    },
    options: {
      plugins: { legend: { display: false } },
      scales: {
        x: { title: { display: true, text: "attempts (calls placed for the item)" } },
        y: { beginAtZero: true, ticks: { precision: 0 }, title: { display: true, text: "items" } },
      },
    },
  });

  var t = data.timeline;
  if (!t) {
    document.body.setAttribute("data-charts", "drawn");
    return;
  }
  var step = t.step;
  var end = Math.max(t.duration, t.live.length * step, step);
  // A bucket's value holds over its whole interval: a line steps at each bucket's start and
  // its last value runs to the end of the run; a bar stands in the middle of its interval.
  function points(series, scale) {
    var out = series.map(function (v, i) { return { x: i * step, y: v * scale }; });
    if (series.length) {
      out.push({ x: end, y: series[series.length - 1] * scale });
    }
    return out;
  }
  function middles(series, scale) {
    return series.map(function (v, i) { return { x: (i + 0.5) * step, y: v * scale }; });
  }
  function rate(series) { return points(series, 1 / step); }
  function rateBars(series) { return middles(series, 1 / step); }
  function gauge(series) { return points(series, 1); }
  // Short runs read best in seconds, long ones as a clock.
  var inSeconds = end < 120;
  function clock(seconds) {
    if (inSeconds) {
      return (Math.round(seconds * 100) / 100) + " s";
    }
    var s = Math.round(seconds);
    var h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
    var mm = (h ? String(m).padStart(2, "0") : String(m)) + ":" + String(r).padStart(2, "0");
    return h ? h + ":" + mm : mm;
  }
  var timeAxis = {
    type: "linear",
    offset: false, // bars sit inside their interval: no padding at either end
    min: 0,
    max: end,
    title: { display: true, text: inSeconds ? "seconds since the run began" : "time since the run began (h:mm:ss)" },
    ticks: { callback: function (v) { return clock(v); }, maxTicksLimit: 12 },
  };
  function line(label, values, color, extra) {
    var set = {
      label: label, data: values, borderColor: color, backgroundColor: color,
      pointRadius: 0, borderWidth: 2, stepped: "before",
    };
    return Object.assign(set, extra || {});
  }
  var bar = { type: "bar", barPercentage: 1, categoryPercentage: 1 };
  function overTime(id, datasets, yTitle, extraScales, stacked) {
    var scales = {
      x: Object.assign({ stacked: !!stacked }, timeAxis),
      y: { beginAtZero: true, stacked: !!stacked, title: { display: true, text: yTitle } },
    };
    chart(id, {
      type: "line",
      data: { datasets: datasets },
      options: {
        parsing: false,
        normalized: true,
        interaction: { mode: "nearest", axis: "x", intersect: false },
        plugins: {
          tooltip: { callbacks: { title: function (items) { return clock(items[0].parsed.x); } } },
        },
        scales: Object.assign(scales, extraScales || {}),
      },
    });
  }

  overTime("chart-live", [
    line("live calls", gauge(t.live), colors.live, { fill: "origin", backgroundColor: "rgba(28,126,214,0.15)" }),
    line("waiting to redial", gauge(t.waiting), colors.waiting),
  ], "items (highest in each interval)");

  overTime("chart-creates", [
    line("first attempts", rateBars(t.creates), colors.first, Object.assign({ stack: "c" }, bar)),
    line("redials", rateBars(t.redial_creates), colors.redial, Object.assign({ stack: "c" }, bar)),
  ], "calls accepted per second", null, true);

  overTime("chart-redials", [
    line("redials scheduled / s", rate(t.redials), colors.scheduled),
    line("redials placed / s", rate(t.redial_creates), colors.redial),
    line("items waiting to redial", gauge(t.waiting), colors.pending, { yAxisID: "y2", borderDash: [5, 4] }),
  ], "per second", {
    y2: { position: "right", beginAtZero: true, grid: { drawOnChartArea: false }, title: { display: true, text: "items waiting" } },
  });

  overTime("chart-finished", [
    line("completed / s", rate(t.completed), colors.completed),
    line("failed / s", rate(t.failed), colors.failed),
  ], "items finished per second");

  overTime("chart-429", [
    line("429s / s", rateBars(t.rate_limited), colors.limited, bar),
    line("seconds waited out", gauge(t.rate_limited_wait), colors.wait, { yAxisID: "y2" }),
  ], "creates answered 429 per second", {
    y2: { position: "right", beginAtZero: true, grid: { drawOnChartArea: false }, title: { display: true, text: "seconds waited (per interval)" } },
  });

  document.body.setAttribute("data-charts", "drawn");
})();
