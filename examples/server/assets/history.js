// The history page (`/jobs`): the signed-in user's jobs, newest first, filtered by status and
// kind, a page at a time.
"use strict";

(function () {
  const { api, el, clear, $, formatDuration, formatNumber, formatTime, badge, notice, errorMessage } = window.AF;
  let cursor = null;
  let loading = false;

  function query() {
    const params = new URLSearchParams();
    const status = $("#status-filter").value;
    const kind = $("#kind-filter").value;
    if (status) params.set("status", status);
    if (kind) params.set("kind", kind);
    params.set("limit", "20");
    if (cursor) params.set("cursor", cursor);
    return params.toString();
  }

  function row(job) {
    const tokens = job.inputTokens === null && job.outputTokens === null
      ? "–"
      : formatNumber((job.inputTokens || 0) + (job.outputTokens || 0));
    const label = job.prompt || "(no prompt)";
    return el("tr", { "data-job": job.id },
      el("td", {}, formatTime(job.createdAt)),
      el("td", { class: "prompt-cell" }, el("a", { href: "/jobs/" + encodeURIComponent(job.id), class: "job-link" }, label),
        job.attachments && job.attachments.length ? window.AF.thumbnails(job.attachments) : null),
      el("td", {}, job.kind),
      el("td", {}, badge(job.status)),
      el("td", { class: "num" }, tokens),
      el("td", { class: "num" }, formatDuration(job.durationMs)));
  }

  async function load(reset) {
    if (loading) return;
    const signedIn = !!window.AF.token();
    $("#signed-out").hidden = signedIn;
    if (!signedIn) { clear($("#jobs")); $("#more").hidden = true; return; }
    loading = true;
    if (reset) { cursor = null; clear($("#jobs")); }
    const answer = await api("GET", window.AF.spacePath("/jobs?" + query()));
    loading = false;
    if (!answer.ok) {
      notice($("#history-notice"), "Could not load your jobs: " + errorMessage(answer), "error");
      return;
    }
    notice($("#history-notice"), "");
    const body = $("#jobs");
    for (const job of answer.data.items) body.append(row(job));
    cursor = answer.data.nextCursor;
    $("#more").hidden = !cursor;
    $("#empty").hidden = body.children.length > 0;
  }

  document.addEventListener("DOMContentLoaded", () => {
    const params = new URLSearchParams(location.search);
    if (params.get("status")) $("#status-filter").value = params.get("status");
    if (params.get("kind")) $("#kind-filter").value = params.get("kind");
    for (const select of [$("#status-filter"), $("#kind-filter")]) {
      select.addEventListener("change", () => {
        const next = new URLSearchParams();
        if ($("#status-filter").value) next.set("status", $("#status-filter").value);
        if ($("#kind-filter").value) next.set("kind", $("#kind-filter").value);
        history.replaceState(null, "", "/jobs" + (next.toString() ? "?" + next : ""));
        load(true);
      });
    }
    $("#filters").addEventListener("submit", (event) => { event.preventDefault(); load(true); });
    $("#more").addEventListener("click", () => load(false));
    document.addEventListener("af:session", () => load(true));
    load(true);
  });
})();
