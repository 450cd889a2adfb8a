// The audit log page (`/orgs/audit`) of the org chosen in the header: the entries oldest first,
// filtered by action, actor and time as `GET /api/orgs/{org}/audit` allows, a page at a time;
// verifying the hash chain; exporting the range as CSV or JSON lines. Needs `read_audit`
// (admin or owner).
"use strict";

(function () {
  const { api, el, clear, $, notice, errorMessage, announce, formatTime, roleAtLeast, token } = window.AF;
  const view = { prefix: null, after: null, loading: false };

  // The `from` and `to` of the range, as RFC 3339 (the inputs hold local times).
  function range() {
    const params = new URLSearchParams();
    for (const [name, id] of [["from", "#audit-from"], ["to", "#audit-to"]]) {
      const value = $(id).value;
      if (!value) continue;
      const time = new Date(value);
      if (!Number.isNaN(time.getTime())) params.set(name, time.toISOString());
    }
    return params;
  }

  function query() {
    const params = range();
    const action = $("#audit-action").value.trim();
    const actor = $("#audit-actor").value.trim();
    if (action) params.set("action", action);
    if (actor) params.set("actor", actor);
    if (view.after) params.set("after", String(view.after));
    return params.toString();
  }

  function actorText(actor) {
    if (!actor) return "–";
    if (actor.kind === "system") return "system";
    return (actor.kind === "api_key" ? "key " : "user ") + actor.id;
  }

  function row(entry) {
    const detail = entry.detail === null || entry.detail === undefined ? "" : JSON.stringify(entry.detail);
    return el("tr", { "data-seq": entry.seq, "data-action": entry.action },
      el("td", { class: "num" }, String(entry.seq)),
      el("td", {}, formatTime(entry.time)),
      el("td", { class: "id-cell" }, actorText(entry.actor)),
      el("td", { class: "action" }, el("code", {}, entry.action)),
      el("td", { class: "id-cell" }, entry.target || "–"),
      el("td", { class: "detail-cell" }, detail));
  }

  async function loadEntries(reset) {
    if (view.loading) return;
    view.loading = true;
    if (reset) { view.after = null; clear($("#entries")); }
    const answer = await api("GET", view.prefix + "/audit?" + query());
    view.loading = false;
    if (!answer.ok) {
      notice($("#audit-notice"), "Could not read the log: " + errorMessage(answer), "error");
      return;
    }
    notice($("#audit-notice"), "");
    const body = $("#entries");
    for (const entry of answer.data.entries) body.append(row(entry));
    view.after = answer.data.next;
    $("#audit-more").hidden = !view.after;
    $("#audit-empty").hidden = body.children.length > 0;
  }

  async function verify() {
    $("#verify").disabled = true;
    const params = range().toString();
    const answer = await api("GET", view.prefix + "/audit/verify" + (params ? "?" + params : ""));
    $("#verify").disabled = false;
    const box = $("#verify-result");
    if (!answer.ok) {
      notice(box, "Could not verify: " + errorMessage(answer), "error");
    } else if (answer.data.ok) {
      notice(box, "The chain is intact: " + answer.data.checked + " entries checked.", "ok");
    } else {
      const broken = answer.data.broken || {};
      notice(box, "The chain is broken at entry " + broken.seq + " (" + broken.problem + "): the log was altered or an entry is missing.", "error");
    }
  }

  async function exportAs(format) {
    const params = range();
    params.set("format", format);
    const status = await window.AF.download(view.prefix + "/audit/export?" + params, "audit." + format);
    if (status !== 200) notice($("#audit-notice"), "The export failed (HTTP " + status + ").", "error");
  }

  async function load() {
    $("#signed-out").hidden = !!token();
    $("#org-page").hidden = true;
    const current = await window.AF.currentOrg($("#org-notice"));
    if (!current) return;
    view.prefix = current.prefix;
    $("#org-title").textContent = " of " + current.org.name;
    document.title = "Audit log of " + current.org.name + " · appforge";
    if (!roleAtLeast(current.org.role, "admin")) {
      notice($("#org-notice"), "Only an admin or owner of " + current.org.name + " reads its audit log; you are " + current.org.role + ".", "warn");
      return;
    }
    $("#org-page").hidden = false;
    await loadEntries(true);
    announce("Audit log loaded");
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("#audit-filters").addEventListener("submit", (event) => { event.preventDefault(); loadEntries(true); });
    $("#audit-more").addEventListener("click", () => loadEntries(false));
    $("#verify").addEventListener("click", verify);
    $("#export-csv").addEventListener("click", () => exportAs("csv"));
    $("#export-jsonl").addEventListener("click", () => exportAs("jsonl"));
    document.addEventListener("af:session", load);
    document.addEventListener("af:space", load);
    load();
  });
})();
