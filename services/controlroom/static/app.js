// distshop control room: live tiles over SSE, the chart from /api/chart, the fault buttons
// without leaving the page. The page works without this script (forms post, tiles render).
"use strict";
(function () {
  const tiles = document.getElementById("tiles");
  const live = document.getElementById("live");
  const flash = document.getElementById("flash");
  let lastTiles = "";

  function say(text, bad) {
    flash.hidden = false;
    flash.textContent = text;
    flash.classList.toggle("bad", !!bad);
  }

  // ---------------------------------------------------------------- live tiles
  function connect() {
    const es = new EventSource("/api/events");
    es.addEventListener("tiles", (e) => {
      live.className = "live on";
      if (e.data !== lastTiles) {
        lastTiles = e.data;
        tiles.innerHTML = e.data;
      }
    });
    es.onerror = () => { live.className = "live off"; };
  }
  if (window.EventSource) connect();

  // ---------------------------------------------------------------- fault buttons
  document.addEventListener("submit", async (e) => {
    const form = e.target;
    if (!form.classList || !form.classList.contains("fault")) return;
    e.preventDefault();
    const data = new FormData(form);
    const body = { action: data.get("action"), target: data.get("target") || "" };
    if (data.get("replicas")) body.replicas = parseInt(data.get("replicas"), 10);
    say(body.action + " " + body.target + " …");
    try {
      const r = await fetch("/api/faults", {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": data.get("csrf") || "" },
        body: JSON.stringify(body),
        credentials: "same-origin",
      });
      const j = await r.json().catch(() => ({}));
      if (r.ok) say(j.action + " " + j.target + ": " + (j.detail || "ok"));
      else say((j.error || j.outcome || ("HTTP " + r.status)), true);
    } catch (err) {
      say("the control room did not answer: " + err, true);
    }
    drawChart();
  });

  // ---------------------------------------------------------------- the chart
  const chart = document.getElementById("chart");
  const W = 1200, H = 360, L = 70, R = 70, T = 16, B = 36;
  const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" }[c]));
  function path(points, x, y) {
    return points.map((p, i) => (i ? "L" : "M") + x(p[0]).toFixed(1) + " " + y(p[1]).toFixed(1)).join(" ");
  }
  async function drawChart() {
    let d;
    try {
      const r = await fetch("/api/chart");
      d = await r.json();
    } catch (e) { return; }
    const s = d.series || {};
    const rps = s.rps || [], err = s.errors_per_s || [], p99 = s.p99_ms || [];
    const x = (t) => L + ((t - d.start) / (d.end - d.start)) * (W - L - R);
    const maxL = Math.max(1, ...rps.map((p) => p[1]), ...err.map((p) => p[1])) * 1.1;
    const maxR = Math.max(10, ...p99.map((p) => p[1])) * 1.1;
    const yl = (v) => H - B - (v / maxL) * (H - T - B);
    const yr = (v) => H - B - (v / maxR) * (H - T - B);
    let svg = '<svg viewBox="0 0 ' + W + " " + H + '" role="img" aria-label="throughput, errors and p99 over the last 5 minutes">';
    for (let i = 0; i <= 4; i++) {
      const v = (maxL * i) / 4, yy = yl(v);
      svg += '<line x1="' + L + '" x2="' + (W - R) + '" y1="' + yy + '" y2="' + yy + '" stroke="#333" stroke-width="2"/>';
      svg += '<text x="' + (L - 8) + '" y="' + (yy + 6) + '" fill="#fff" font-size="18" text-anchor="end">' + Math.round(v) + "</text>";
      svg += '<text x="' + (W - R + 8) + '" y="' + (yr((maxR * i) / 4) + 6) + '" fill="#ffdc00" font-size="18">' + Math.round((maxR * i) / 4) + "</text>";
    }
    for (let m = 0; m <= 5; m++) {
      const t = d.end - m * 60;
      svg += '<text x="' + x(t) + '" y="' + (H - 8) + '" fill="#bbb" font-size="18" text-anchor="middle">' + (m ? "-" + m + " min" : "now") + "</text>";
    }
    (d.manager || []).forEach((f) => {
      svg += '<line x1="' + x(f.t) + '" x2="' + x(f.t) + '" y1="' + T + '" y2="' + (H - B) + '" stroke="#4fc3ff" stroke-width="3" stroke-dasharray="6 6"><title>' + esc(f.label) + "</title></line>";
    });
    (d.faults || []).forEach((f, i) => {
      const xx = x(f.t);
      svg += '<line class="fault-marker" x1="' + xx + '" x2="' + xx + '" y1="' + T + '" y2="' + (H - B) + '" stroke="#ff851b" stroke-width="4"><title>' + esc(f.label) + "</title></line>";
      svg += '<text x="' + (xx + 4) + '" y="' + (T + 18 + (i % 4) * 20) + '" fill="#ff851b" font-size="17">' + esc(f.label) + "</text>";
    });
    svg += '<path d="' + path(rps, x, yl) + '" fill="none" stroke="#fff" stroke-width="4"/>';
    svg += '<path d="' + path(err, x, yl) + '" fill="none" stroke="#ff4136" stroke-width="4"/>';
    svg += '<path d="' + path(p99, x, yr) + '" fill="none" stroke="#ffdc00" stroke-width="3"/>';
    if (!d.prometheus) svg += '<text x="' + W / 2 + '" y="' + H / 2 + '" fill="#ff4136" font-size="26" text-anchor="middle">Prometheus did not answer</text>';
    svg += "</svg>";
    chart.innerHTML = svg;
  }
  drawChart();
  setInterval(drawChart, 4000);
})();
