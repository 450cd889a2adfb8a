// The queue dashboard (`/admin/queues`): live statistics from the admin API (server-sent
// events, falling back to polling every 5 s), a throughput chart, workers, alerts, recent
// failures with retry, pending and running jobs with cancel, and the metrics report.
"use strict";

(function () {
  const { api, sse, el, clear, $, formatDuration, formatNumber, formatTime, badge, announce, notice, errorMessage } = window.AF;
  const SVG = "http://www.w3.org/2000/svg";
  const POLL_MS = 5000;
  let live = null; // AbortController of the event stream
  let pollTimer = null;

  function svg(tag, attrs, ...children) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    return node;
  }

  function card(label, value, id) {
    return el("div", { class: "card", id }, el("div", { class: "value" }, value), el("div", { class: "label" }, label));
  }

  function percent(rate) {
    return (rate * 100).toFixed(rate > 0 && rate < 0.1 ? 1 : 0) + " %";
  }

  function renderCards(r) {
    const t = r.totals || {};
    clear($("#cards")).append(
      card("pending", formatNumber(t.pending || 0), "card-pending"),
      card("running", formatNumber(t.processing || 0), "card-processing"),
      card("completed in " + Math.round(r.windowSeconds / 60) + " min", formatNumber(r.completedInWindow), "card-completed"),
      card("failed in " + Math.round(r.windowSeconds / 60) + " min", formatNumber(r.failedInWindow), "card-failed"),
      card("failure rate", percent(r.failureRate || 0), "card-rate"),
      card("duration p50 / p95", formatDuration(r.durationP50Ms) + " / " + formatDuration(r.durationP95Ms), "card-durations"),
      card("oldest pending", r.oldestPendingAgeSeconds === null ? "–" : formatDuration(r.oldestPendingAgeSeconds * 1000), "card-oldest"),
      card("live workers", formatNumber(r.liveWorkers), "card-workers"));
  }

  function renderChart(series) {
    const points = (series && series.points) || [];
    const width = 600;
    const height = 180;
    const pad = { left: 30, right: 6, top: 8, bottom: 20 };
    const max = Math.max(1, ...points.map((p) => Math.max(p.completed, p.failed)));
    const inner = width - pad.left - pad.right;
    const step = points.length ? inner / points.length : inner;
    const barW = Math.max(1, step / 2 - 1);
    const y = (v) => pad.top + (height - pad.top - pad.bottom) * (1 - v / max);
    const totalCompleted = points.reduce((a, p) => a + p.completed, 0);
    const totalFailed = points.reduce((a, p) => a + p.failed, 0);
    const chart = svg("svg", { viewBox: "0 0 " + width + " " + height, role: "img", "aria-labelledby": "chart-title chart-desc" },
      svg("title", { id: "chart-title" }, "Jobs completed and failed per minute"),
      svg("desc", { id: "chart-desc" }, "Over the last hour: " + totalCompleted + " completed and " + totalFailed + " failed; the busiest minute had " + max + "."),
      svg("line", { class: "axis", x1: pad.left, y1: height - pad.bottom, x2: width - pad.right, y2: height - pad.bottom }),
      svg("line", { class: "axis", x1: pad.left, y1: pad.top, x2: pad.left, y2: height - pad.bottom }),
      svg("text", { x: 2, y: pad.top + 8 }, String(max)),
      svg("text", { x: 2, y: height - pad.bottom }, "0"));
    points.forEach((p, i) => {
      const x = pad.left + i * step + 1;
      if (p.completed > 0) chart.append(svg("rect", { class: "completed", x, y: y(p.completed), width: barW, height: height - pad.bottom - y(p.completed) }, svg("title", {}, new Date(p.at).toLocaleTimeString() + ": " + p.completed + " completed")));
      if (p.failed > 0) chart.append(svg("rect", { class: "failed", x: x + barW, y: y(p.failed), width: barW, height: height - pad.bottom - y(p.failed) }, svg("title", {}, new Date(p.at).toLocaleTimeString() + ": " + p.failed + " failed")));
    });
    if (points.length) {
      chart.append(svg("text", { x: pad.left, y: height - 4 }, new Date(points[0].at).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })));
      chart.append(svg("text", { x: width - pad.right - 34, y: height - 4 }, "now"));
    }
    clear($("#chart")).append(chart);
  }

  function renderDepth(rows) {
    const body = clear($("#depth"));
    if (!rows.length) body.append(el("tr", {}, el("td", { colspan: 3, class: "muted" }, "The queue is empty.")));
    for (const d of rows) body.append(el("tr", {}, el("td", {}, badge(d.status)), el("td", {}, d.plan), el("td", { class: "num" }, formatNumber(d.count))));
  }

  function alertText(a) {
    switch (a.type) {
      case "queue_length": return "Queue length: " + a.pending + " jobs pending (threshold " + a.threshold + ")";
      case "failure_rate": return "Failure rate " + percent(a.rate) + " over the window (" + a.failed + " failed; threshold " + percent(a.threshold) + ")";
      case "worker_silent": return "Worker " + a.worker.name + " has not sent a heartbeat since " + formatTime(a.worker.last_heartbeat);
      case "stuck_jobs": return a.count + " running jobs have an expired lease (stuck until rescued)";
      default: return a.type;
    }
  }

  function renderAlerts(alerts) {
    const list = clear($("#alerts"));
    if (!alerts.length) list.append(el("li", { class: "muted" }, "No active alerts."));
    for (const a of alerts) list.append(el("li", { class: "error-text", "data-alert": a.type }, alertText(a)));
  }

  function renderWorkers(workers) {
    const body = clear($("#workers"));
    if (!workers.length) body.append(el("tr", {}, el("td", { colspan: 5, class: "muted" }, "No worker pool is registered.")));
    for (const w of workers) {
      body.append(el("tr", {},
        el("td", {}, w.name, el("div", { class: "muted" }, el("code", {}, w.id.slice(0, 8)))),
        el("td", {}, el("span", { class: "badge " + (w.live ? "completed" : "failed") }, w.live ? "live" : "silent")),
        el("td", {}, w.heartbeatAgeSeconds + " s ago"),
        el("td", { class: "num" }, w.running + " / " + w.concurrency),
        el("td", {}, formatTime(w.startedAt))));
    }
  }

  async function act(action, id, button) {
    button.disabled = true;
    const answer = await api("POST", "/api/admin/jobs/" + encodeURIComponent(id) + "/" + action, undefined, { token: window.AF.adminToken() });
    if (answer.ok) {
      notice($("#admin-notice"), "Job " + id.slice(0, 8) + (action === "retry" ? " is pending again." : " is cancelled."), "ok");
      announce(action === "retry" ? "Job queued again" : "Job cancelled");
      refresh();
    } else {
      button.disabled = false;
      notice($("#admin-notice"), "Could not " + action + " the job: " + errorMessage(answer), "error");
    }
  }

  function renderFailures(rows) {
    const body = clear($("#failures"));
    if (!rows.length) body.append(el("tr", {}, el("td", { colspan: 6, class: "muted" }, "No failed jobs.")));
    for (const f of rows) {
      const button = el("button", { type: "button", class: "secondary", "data-retry": f.id, "aria-label": "Retry job " + f.id.slice(0, 8) }, "Retry");
      button.addEventListener("click", () => act("retry", f.id, button));
      body.append(el("tr", {},
        el("td", {}, el("code", {}, f.id.slice(0, 8))),
        el("td", {}, f.kind),
        el("td", { class: "error-text" }, f.error || "–"),
        el("td", {}, f.attempt + " / " + f.maxAttempts),
        el("td", {}, formatTime(f.completedAt)),
        el("td", {}, button)));
    }
  }

  async function renderActive() {
    const token = window.AF.adminToken();
    const [pending, running] = await Promise.all([
      api("GET", "/api/admin/jobs?status=pending&limit=20", undefined, { token }),
      api("GET", "/api/admin/jobs?status=processing&limit=20", undefined, { token }),
    ]);
    const body = clear($("#active"));
    const jobs = [...(running.ok ? running.data.items : []), ...(pending.ok ? pending.data.items : [])];
    if (!jobs.length) body.append(el("tr", {}, el("td", { colspan: 5, class: "muted" }, "Nothing pending or running.")));
    for (const j of jobs) {
      const button = el("button", { type: "button", class: "danger", "data-cancel": j.id, "aria-label": "Cancel job " + j.id.slice(0, 8) }, "Cancel");
      button.addEventListener("click", () => act("cancel", j.id, button));
      body.append(el("tr", {},
        el("td", {}, el("code", {}, j.id.slice(0, 8))),
        el("td", {}, j.kind),
        el("td", {}, badge(j.status)),
        el("td", {}, formatTime(j.createdAt)),
        el("td", {}, button)));
    }
  }

  function render(report) {
    $("#dashboard").hidden = false;
    renderCards(report);
    renderChart(report.series);
    renderDepth(report.depth || []);
    renderAlerts(report.alerts || []);
    renderWorkers(report.workers || []);
    renderFailures(report.recentFailures || []);
    renderActive();
    $("#dashboard").setAttribute("data-updated", report.generatedAt);
  }

  async function refresh() {
    const answer = await api("GET", "/api/admin/queues", undefined, { token: window.AF.adminToken() });
    if (answer.ok) { render(answer.data); return true; }
    rejected(answer);
    return false;
  }

  function rejected(answer) {
    stop();
    $("#dashboard").hidden = true;
    if (answer.status === 404) notice($("#admin-notice"), "The admin routes are closed: the server has no APPFORGE_ADMIN_TOKEN.", "warn");
    else if (answer.status === 401) notice($("#admin-notice"), "The admin token was refused.", "error");
    else notice($("#admin-notice"), "Could not load the dashboard: " + errorMessage(answer), "error");
    $("#live").textContent = "";
  }

  function stop() {
    if (live) live.abort();
    live = null;
    if (pollTimer) clearInterval(pollTimer);
    pollTimer = null;
  }

  function poll() {
    if (pollTimer) return;
    $("#live").textContent = "Polling every " + POLL_MS / 1000 + " s.";
    pollTimer = setInterval(refresh, POLL_MS);
  }

  async function start() {
    stop();
    notice($("#admin-notice"), "");
    if (!window.AF.adminToken()) { $("#admin-forget").hidden = true; return; }
    $("#admin-forget").hidden = false;
    if (!(await refresh())) return;
    loadMetrics();
    const abort = new AbortController();
    live = abort;
    $("#live").textContent = "Live: updates every few seconds.";
    try {
      const outcome = await sse("/api/admin/queues/events", (name, data) => {
        if (name === "stats") render(data);
      }, { token: window.AF.adminToken(), signal: abort.signal });
      if (abort.signal.aborted) return;
      if (outcome.status !== 200) { rejected(outcome); return; }
    } catch (_) {
      if (abort.signal.aborted) return;
    }
    // The stream ended (a proxy without streaming, a restart): poll instead.
    live = null;
    poll();
  }

  // ---- metrics (GET /api/admin/metrics: the analytics report over UTC days) -----------------

  function isoDay(d) {
    return d.toISOString().slice(0, 10);
  }

  function money(cents, currency) {
    return (cents / 100).toFixed(2) + " " + currency.toUpperCase();
  }

  function renderMetricsCards(m) {
    const days = (m.active && m.active.days) || [];
    const last = days.length ? days[days.length - 1] : { dau: 0, wau: 0, mau: 0 };
    const totals = (m.generations && m.generations.totals) || {};
    const failures = m.failures || {};
    const durations = m.durations;
    const usage = m.usage || {};
    const tokens = usage.tokens || {};
    const revenue = Object.entries((m.revenue && m.revenue.totals) || {});
    return el("div", { class: "cards", id: "metrics-cards" },
      card("DAU / WAU / MAU on " + (last.day || "the last day"), formatNumber(last.dau) + " / " + formatNumber(last.wau) + " / " + formatNumber(last.mau), "metrics-active"),
      card("active users in the range", formatNumber(m.active ? m.active.distinctUsers : 0), "metrics-users"),
      card("generations requested", formatNumber(totals.requested || 0), "metrics-requested"),
      card("completed / failed / cancelled", formatNumber(totals.completed || 0) + " / " + formatNumber(totals.failed || 0) + " / " + formatNumber(totals.cancelled || 0), "metrics-outcomes"),
      card("failure rate", percent(failures.failureRate || 0), "metrics-failure-rate"),
      card("generation p50 / p95", durations ? formatDuration(durations.p50Ms) + " / " + formatDuration(durations.p95Ms) : "–", "metrics-durations"),
      card("tokens in / out", formatNumber(tokens.input || 0) + " / " + formatNumber(tokens.output || 0), "metrics-tokens"),
      card("model cost", "$" + ((usage.costMicroUsd || 0) / 1e6).toFixed(2) + freeNote(usage.freeModels), "metrics-cost"),
      card("revenue", revenue.length ? revenue.map(([c, v]) => money(v, c)).join(", ") : "–", "metrics-revenue"));
  }

  // Models priced at zero on purpose (the offline demo) are named, so a $0 cost reads as free
  // rather than as missing prices.
  function freeNote(models) {
    if (!models || !models.length) return "";
    return " (" + models.map((m) => m === "offline-demo" ? "offline demo" : m).join(", ") + ": free)";
  }

  function renderMetricsChart(m) {
    const days = (m.generations && m.generations.days) || [];
    const width = 600;
    const height = 160;
    const pad = { left: 30, right: 6, top: 8, bottom: 20 };
    const max = Math.max(1, ...days.map((d) => Math.max(d.counts.completed, d.counts.failed)));
    const inner = width - pad.left - pad.right;
    const step = days.length ? inner / days.length : inner;
    const barW = Math.max(1, Math.min(24, step / 2 - 1));
    const y = (v) => pad.top + (height - pad.top - pad.bottom) * (1 - v / max);
    const completed = days.reduce((a, d) => a + d.counts.completed, 0);
    const failed = days.reduce((a, d) => a + d.counts.failed, 0);
    const chart = svg("svg", { viewBox: "0 0 " + width + " " + height, role: "img", "aria-labelledby": "metrics-chart-title metrics-chart-desc" },
      svg("title", { id: "metrics-chart-title" }, "Generations completed and failed per day"),
      svg("desc", { id: "metrics-chart-desc" }, "From " + m.from + " over " + days.length + " days: " + completed + " completed and " + failed + " failed; the busiest day had " + max + "."),
      svg("line", { class: "axis", x1: pad.left, y1: height - pad.bottom, x2: width - pad.right, y2: height - pad.bottom }),
      svg("line", { class: "axis", x1: pad.left, y1: pad.top, x2: pad.left, y2: height - pad.bottom }),
      svg("text", { x: 2, y: pad.top + 8 }, String(max)),
      svg("text", { x: 2, y: height - pad.bottom }, "0"));
    days.forEach((d, i) => {
      const x = pad.left + i * step + 1;
      const c = d.counts;
      if (c.completed > 0) chart.append(svg("rect", { class: "completed", x, y: y(c.completed), width: barW, height: height - pad.bottom - y(c.completed), "data-day": d.day }, svg("title", {}, d.day + ": " + c.completed + " completed")));
      if (c.failed > 0) chart.append(svg("rect", { class: "failed", x: x + barW, y: y(c.failed), width: barW, height: height - pad.bottom - y(c.failed) }, svg("title", {}, d.day + ": " + c.failed + " failed")));
    });
    if (days.length) {
      chart.append(svg("text", { x: pad.left, y: height - 4 }, days[0].day));
      if (days.length > 1) chart.append(svg("text", { x: width - pad.right - 58, y: height - 4 }, days[days.length - 1].day));
    }
    return el("div", { class: "chart", id: "metrics-chart" },
      el("div", { class: "legend" }, el("span", {}, el("span", { class: "swatch completed" }), "completed / day"), el("span", {}, el("span", { class: "swatch failed" }), "failed / day")),
      chart);
  }

  async function loadMetrics() {
    const box = clear($("#metrics"));
    box.removeAttribute("data-loaded");
    const from = $("#metrics-from").value;
    const to = $("#metrics-to").value;
    const answer = await api("GET", "/api/admin/metrics?from=" + encodeURIComponent(from) + "&to=" + encodeURIComponent(to), undefined, { token: window.AF.adminToken() });
    if (answer.status === 404) {
      box.append(el("p", { class: "muted", id: "metrics-unavailable" }, "Metrics are not available on this server (no analytics report route)."));
      return;
    }
    if (!answer.ok || !answer.data) {
      box.append(el("p", { class: "error-text", id: "metrics-error", role: "alert" }, "Could not load the metrics: " + errorMessage(answer)));
      return;
    }
    const m = answer.data;
    box.append(renderMetricsCards(m), renderMetricsChart(m));
    const errors = (m.failures && m.failures.topErrors) || [];
    if (errors.length) {
      box.append(el("h3", {}, "Top error categories"), el("ul", { id: "metrics-errors" }, errors.map((e) => el("li", {}, e.category + ": " + e.count))));
    }
    box.setAttribute("data-loaded", m.from + "/" + m.to);
  }

  document.addEventListener("DOMContentLoaded", () => {
    const today = new Date();
    const weekAgo = new Date(today.getTime() - 6 * 86400000);
    $("#metrics-from").value = isoDay(weekAgo);
    $("#metrics-to").value = isoDay(today);
    $("#admin-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const value = $("#admin-token").value.trim();
      if (!value) { $("#admin-token").focus(); return; }
      window.AF.setAdminToken(value);
      $("#admin-token").value = "";
      start();
    });
    $("#admin-forget").addEventListener("click", () => {
      window.AF.setAdminToken("");
      stop();
      $("#dashboard").hidden = true;
      $("#admin-forget").hidden = true;
      $("#live").textContent = "";
      $("#admin-token").focus();
    });
    $("#metrics-form").addEventListener("submit", (event) => { event.preventDefault(); loadMetrics(); });
    start();
  });
})();
