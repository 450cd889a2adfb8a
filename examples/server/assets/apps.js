// The library (`/apps`): the signed-in user's saved apps, most recently changed first, searched
// by title, a page at a time; deleted apps can be listed and restored.
"use strict";

(function () {
  const { api, el, clear, $, formatTime, notice, errorMessage, announce } = window.AF;
  let cursor = null;
  let loading = false;

  function query() {
    const params = new URLSearchParams();
    const search = $("#search").value.trim();
    if (search) params.set("search", search);
    if ($("#show-deleted").value) params.set("deleted", "true");
    params.set("limit", "20");
    if (cursor) params.set("cursor", cursor);
    return params.toString();
  }

  function row(app) {
    const link = el("a", { href: "/apps/" + encodeURIComponent(app.id), class: "app-link" }, app.title);
    const published = app.previewPath
      ? el("a", { href: app.previewPath, class: "preview-link" }, "v" + app.publishedVersion)
      : el("span", { class: "muted" }, "no");
    let action = null;
    if (app.deletedAt) {
      action = el("button", { type: "button", class: "secondary", "data-undelete": app.id, onclick: () => undelete(app) }, "Restore");
    }
    return el("tr", { "data-app": app.id },
      el("td", { class: "prompt-cell" }, link),
      el("td", { class: "prompt-cell" }, app.description || ""),
      el("td", { class: "num" }, String(app.currentVersion)),
      el("td", {}, published),
      el("td", {}, formatTime(app.updatedAt)),
      el("td", {}, action));
  }

  async function undelete(app) {
    const answer = await api("POST", window.AF.spacePath("/apps/" + encodeURIComponent(app.id) + "/undelete"));
    if (!answer.ok) {
      notice($("#apps-notice"), "Could not restore " + app.title + ": " + errorMessage(answer), "error");
      return;
    }
    announce(app.title + " restored");
    notice($("#apps-notice"), app.title + " is back in your library.", "ok");
    load(true, true);
  }

  async function load(reset, keepNotice) {
    if (loading) return;
    const signedIn = !!window.AF.token();
    $("#signed-out").hidden = signedIn;
    if (!signedIn) { clear($("#apps")); $("#apps-more").hidden = true; return; }
    loading = true;
    if (reset) { cursor = null; clear($("#apps")); }
    const answer = await api("GET", window.AF.spacePath("/apps?" + query()));
    loading = false;
    if (!answer.ok) {
      notice($("#apps-notice"), "Could not load your apps: " + errorMessage(answer), "error");
      return;
    }
    if (!keepNotice) notice($("#apps-notice"), "");
    const body = $("#apps");
    for (const app of answer.data.items) body.append(row(app));
    cursor = answer.data.nextCursor;
    $("#apps-more").hidden = !cursor;
    $("#apps-empty").hidden = body.children.length > 0;
  }

  document.addEventListener("DOMContentLoaded", () => {
    const params = new URLSearchParams(location.search);
    if (params.get("search")) $("#search").value = params.get("search");
    if (params.get("deleted") === "true") $("#show-deleted").value = "true";
    const apply = () => {
      const next = new URLSearchParams();
      if ($("#search").value.trim()) next.set("search", $("#search").value.trim());
      if ($("#show-deleted").value) next.set("deleted", "true");
      history.replaceState(null, "", "/apps" + (next.toString() ? "?" + next : ""));
      load(true);
    };
    $("#search-form").addEventListener("submit", (event) => { event.preventDefault(); apply(); });
    $("#show-deleted").addEventListener("change", apply);
    $("#apps-more").addEventListener("click", () => load(false));
    document.addEventListener("af:session", () => load(true));
    load(true);
  });
})();
