/* The page's plots, drawn with uPlot (vendored). Plots of many trials (learning curves, the
   AeLLE plane) give uPlot only their extents and draw their lines and marks in one pass of its
   draw hook: a thousand trials cost one canvas, not a thousand series. */
"use strict";

const Plots = (() => {
  const FATE = {complete: "#2166ac", running: "#1a9850", waiting: "#969696",
                pruned: "#e08214", diverged: "#b2182b", failed: "#542788"};
  const HEIGHT = 240;
  const live = new Map();  // element id -> uPlot

  function mount(el, opts, data) {
    const old = live.get(el.id);
    if (old) old.destroy();
    el.textContent = "";
    const width = Math.max(280, el.clientWidth || 420);
    const u = new uPlot({width, height: HEIGHT, legend: {show: false},
                         cursor: {show: false}, ...opts}, data, el);
    live.set(el.id, u);
    return u;
  }

  function extent(values, pad = 0.05) {
    let lo = Infinity, hi = -Infinity;
    for (const v of values) if (v != null && isFinite(v)) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
    if (lo === Infinity) return [0, 1];
    const scale = Math.max(Math.abs(lo), Math.abs(hi), 1e-12);
    if (hi - lo <= 1e-9 * scale) return [lo - scale * 0.1 - 1e-12, hi + scale * 0.1 + 1e-12];
    const d = (hi - lo) * pad;
    return [lo - d, hi + d];
  }

  function empty(el, text) {
    const old = live.get(el.id);
    if (old) { old.destroy(); live.delete(el.id); }
    el.textContent = text;
    el.dataset.points = "0";
  }

  // a frame whose scales span the data, its marks drawn by `draw(u, ctx)`
  function frame(el, xr, yr, xlabel, ylabel, draw, time = false) {
    const opts = {
      scales: {x: {time, range: () => xr}, y: {range: () => yr}},
      axes: [{label: xlabel}, {label: ylabel}],
      series: [{}, {stroke: "transparent", points: {show: false}}],
      hooks: {draw: [u => { const c = u.ctx; c.save(); draw(u, c); c.restore(); }]},
    };
    return mount(el, opts, [xr, yr]);
  }

  function bestVsCompute(el, points) {
    if (!points.length) return empty(el, "No trial has completed yet.");
    el.dataset.points = String(points.length);
    const xs = points.map(p => p[0]), ys = points.map(p => p[1]);
    mount(el, {
      scales: {x: {time: false}},
      axes: [{label: "epochs trained"}, {label: "best value"}],
      series: [{}, {stroke: FATE.complete, width: 2, paths: uPlot.paths.stepped({align: 1}),
                    points: {show: true, size: 5}}],
    }, [xs, ys]);
  }

  function learningCurves(el, curves, epochs) {
    const drawn = curves.filter(c => c.values.length);
    if (!drawn.length) return empty(el, "No trial has reported yet.");
    el.dataset.points = String(drawn.reduce((n, c) => n + c.values.length, 0));
    const yr = extent(drawn.flatMap(c => c.values));
    frame(el, [0, Math.max(1, epochs)], yr, "epoch", "value", (u, c) => {
      c.lineWidth = 1.25;
      c.globalAlpha = drawn.length > 200 ? 0.45 : 0.8;
      for (const fate of Object.keys(FATE)) {  // one path per fate: few stroke calls
        c.strokeStyle = FATE[fate];
        c.beginPath();
        for (const t of drawn) {
          if (t.state !== fate) continue;
          t.epochs.forEach((e, i) => {
            const x = u.valToPos(e, "x", true), y = u.valToPos(t.values[i], "y", true);
            i ? c.lineTo(x, y) : c.moveTo(x, y);
          });
        }
        c.stroke();
      }
    });
  }

  // value -> colour, from blue (best) to yellow (worst) whichever the direction
  function ramp(values, minimize) {
    const [lo, hi] = extent(values, 0);
    return v => {
      if (v == null) return "#bdbdbd";
      let f = hi > lo ? (v - lo) / (hi - lo) : 0.5;
      if (!minimize) f = 1 - f;
      return `hsl(${Math.round(230 - 180 * f)}, 75%, ${Math.round(38 + 17 * f)}%)`;
    };
  }

  function mark(c, shape, x, y, r) {
    c.beginPath();
    if (shape === "cross") {
      c.moveTo(x - r, y - r); c.lineTo(x + r, y + r); c.moveTo(x + r, y - r); c.lineTo(x - r, y + r);
      c.lineWidth = 2.2; c.stroke(); return;
    }
    if (shape === "triangle") { c.moveTo(x, y - r); c.lineTo(x + r, y + r); c.lineTo(x - r, y + r); c.closePath(); }
    else c.arc(x, y, r, 0, 2 * Math.PI);
    c.fill(); c.lineWidth = 0.6; c.strokeStyle = "#333"; c.stroke();
  }

  function shapeOf(p) {
    if (p.state === "diverged") return "triangle";
    if (p.state === "pruned" || p.decision === "prune") return "cross";
    return "circle";
  }

  function plane(el, points, minimize) {
    if (!points.length) return empty(el, "No trial has reported a spectrum yet.");
    el.dataset.points = String(points.length);
    const colour = ramp(points.map(p => p.value), minimize);
    const r = points.length > 300 ? 2.5 : 4;
    const xr = extent(points.map(p => p.x));
    let yr = extent(points.map(p => p.y));
    const span = xr[1] - xr[0];
    if (yr[1] - yr[0] < 1e-6 * span) yr = [(yr[0] + yr[1]) / 2 - span / 4, (yr[0] + yr[1]) / 2 + span / 4];
    frame(el, xr, yr, "PC 1", "PC 2",
      (u, c) => {
        for (const p of points) {
          const x = u.valToPos(p.x, "x", true), y = u.valToPos(p.y, "y", true);
          c.fillStyle = c.strokeStyle = colour(p.value);
          mark(c, shapeOf(p), x, y, r * devicePixelRatio);
        }
      });
  }

  function spectra(el, reports) {
    const withZ = reports.filter(r => r.spectrum && r.spectrum.length);
    if (!withZ.length) return empty(el, "This trial has reported no spectrum yet.");
    const n = Math.max(...withZ.map(r => r.spectrum.length));
    el.dataset.points = String(withZ.reduce((k, r) => k + r.spectrum.length, 0));
    const xs = Array.from({length: n}, (_, i) => i + 1);
    const last = withZ.length - 1;
    const series = [{}].concat(withZ.map((r, i) => ({
      label: `epoch ${r.epoch}`, width: i === last ? 2.5 : 1.25,
      stroke: `hsl(215, 70%, ${Math.round(82 - 52 * (last ? i / last : 1))}%)`,
      points: {show: n <= 32, size: 4},
    })));
    const data = [xs].concat(withZ.map(r => xs.map((_, i) => i < r.spectrum.length ? r.spectrum[i] : null)));
    mount(el, {scales: {x: {time: false}},
               axes: [{label: "exponent", incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500]},
                      {label: "Lyapunov exponent"}],
               series}, data);
  }

  function modelVersions(el, versions) {
    if (!versions.length) return empty(el, "No AeLLE model yet.");
    el.dataset.points = String(versions.length);
    const xs = versions.map(v => Date.parse(v.created_at) / 1000);
    if (xs.length === 1) xs.push(xs[0] + 1);  // one version: give the time axis a span
    const ys = versions.map(v => v.trials);
    if (ys.length < xs.length) ys.push(null);
    mount(el, {axes: [{}, {label: "trials fitted on"}],
               series: [{}, {stroke: FATE.complete, width: 2, points: {show: true, size: 7}}]},
          [xs, ys]);
  }

  return {FATE, bestVsCompute, learningCurves, plane, spectra, modelVersions};
})();
