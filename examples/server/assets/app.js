// One saved app (`/apps/{id}`): its details, rename, publish / unpublish, download, delete and
// restore; its versions (view one, restore one as a new version); the version being viewed,
// running in a sandboxed preview or as its files (a Preview / Code switch); a per-file diff between two versions; and "change something", which starts a
// modification of the current version and follows it on the job page. A version made by a
// generation with reference images shows their thumbnails.
"use strict";

(function () {
  const { api, el, clear, $, formatTime, formatNumber, notice, errorMessage, announce } = window.AF;

  const view = {
    id: null,
    app: null,
    versions: [],
    viewing: null, // the version number whose files are shown
    files: [],
    selected: null,
    preview: null, // the live preview (AF.preview)
  };

  function appIdFromPath() {
    const match = location.pathname.match(/^\/apps\/([^/]+)$/);
    return match ? decodeURIComponent(match[1]) : null;
  }

  function path(suffix) {
    return window.AF.spacePath("/apps/" + encodeURIComponent(view.id) + (suffix || ""));
  }

  function fail(what, answer) {
    notice($("#app-notice"), what + ": " + errorMessage(answer), "error");
  }

  // ---- the app -----------------------------------------------------------------------------

  function showApp(app) {
    view.app = app;
    document.title = app.title + " · appforge";
    $("#app").hidden = false;
    $("#app-title").textContent = app.title;
    $("#app-description").textContent = app.description || "";
    $("#app-version").textContent = "v" + app.currentVersion;
    $("#app-updated").textContent = formatTime(app.updatedAt);
    const published = !!app.previewPath;
    $("#app-published").textContent = published ? "v" + app.publishedVersion : "no";
    $("#publish").textContent = published ? "Publish the current version" : "Publish";
    $("#unpublish").hidden = !published;
    const preview = $("#preview-link");
    preview.hidden = !published;
    if (published) preview.setAttribute("href", app.previewPath);
    const deleted = !!app.deletedAt;
    $("#app-deleted").hidden = !deleted;
    $("#delete-app").hidden = deleted;
    $("#undelete-app").hidden = !deleted;
    if (document.activeElement !== $("#rename")) $("#rename").value = app.title;
    // A viewer of the current org reads the app; changing it is for members.
    if (!window.AF.canGenerate()) {
      for (const id of ["#rename-form", "#publish", "#unpublish", "#delete-app", "#undelete-app", "#app-modify-form"]) $(id).hidden = true;
    }
  }

  async function loadApp() {
    const answer = await api("GET", path());
    if (answer.status === 404) {
      notice($("#app-notice"), "No such app for the signed-in user (a deleted app is restored from the library's deleted apps).", "error");
      return false;
    }
    if (!answer.ok) { fail("Could not load the app", answer); return false; }
    showApp(answer.data.app);
    return true;
  }

  // ---- versions ----------------------------------------------------------------------------

  function renderVersions() {
    const body = clear($("#versions"));
    for (const v of view.versions) {
      const text = [v.prompt ? "“" + v.prompt + "”" : null, v.changeSummary].filter(Boolean);
      const tokens = formatNumber((v.inputTokens || 0) + (v.outputTokens || 0));
      const current = v.number === view.app.currentVersion;
      const actions = el("td", {}, el("div", { class: "row" },
        el("button", { type: "button", class: "secondary", "data-view": v.number, "aria-pressed": v.number === view.viewing ? "true" : "false", onclick: () => showVersion(v.number) }, "View"),
        current ? null : el("button", { type: "button", class: "secondary", "data-restore": v.number, onclick: () => restore(v.number) }, "Restore")));
      const classes = [current ? "current" : "", v.number === view.viewing ? "viewing" : ""].join(" ").trim();
      body.append(el("tr", { "data-version": v.number, class: classes || null },
        el("td", { class: "num" }, "v" + v.number + (current ? " (current)" : "")),
        el("td", {}, formatTime(v.createdAt)),
        el("td", { class: "prompt-cell" }, text.length ? text.join(" — ") : el("span", { class: "muted" }, v.baseVersion ? "restored" : "—")),
        el("td", { class: "num" }, String(v.fileCount)),
        el("td", { class: "num" }, tokens),
        actions));
    }
    $("#versions-panel").hidden = false;
    fillDiffSelects();
  }

  async function loadVersions() {
    const answer = await api("GET", path("/versions"));
    if (!answer.ok) { fail("Could not load the versions", answer); return; }
    view.versions = answer.data.items.slice().sort((a, b) => b.number - a.number);
    renderVersions();
  }

  async function restore(number) {
    const answer = await api("POST", path("/restore"), { version: number });
    if (!answer.ok) { fail("Could not restore version " + number, answer); return; }
    showApp(answer.data.app);
    notice($("#app-notice"), "Version " + number + " is restored as version " + answer.data.version.number + ".", "ok");
    announce("Version restored");
    await loadVersions();
    showFiles(answer.data.version);
  }

  // ---- the files of one version ------------------------------------------------------------

  function renderTree() {
    const list = clear($("#file-tree"));
    for (const file of view.files) {
      list.append(el("li", {}, el("button", {
        type: "button",
        "data-path": file.path,
        "aria-pressed": view.selected === file.path ? "true" : "false",
        onclick: () => select(file.path),
      }, file.path)));
    }
  }

  function select(filePath) {
    view.selected = filePath;
    const file = view.files.find((f) => f.path === filePath);
    $("#code-title").textContent = filePath;
    $("#code-text").textContent = file ? file.content : "";
    renderTree();
  }

  // The reference images the version's job attached (`attachments`, read as the user's
  // uploads); a version made without images shows none.
  function showAttachments(ids) {
    const box = $("#version-thumbs");
    $("#version-attachments").hidden = ids.length === 0;
    if (box.getAttribute("data-ids") === ids.join(",")) return;
    box.setAttribute("data-ids", ids.join(","));
    clear(box);
    if (ids.length) box.append(window.AF.thumbnails(ids));
  }

  function showFiles(version) {
    view.viewing = version.number;
    view.files = (version.files || []).slice().sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
    $("#files-version").textContent = String(version.number);
    showAttachments(version.attachments || []);
    $("#files-panel").hidden = false;
    view.preview.show(view.id, version.number);
    const keep = view.files.some((f) => f.path === view.selected);
    if (keep) select(view.selected);
    else if (view.files.length) select(view.files[0].path);
    else { $("#code-title").textContent = "No files"; $("#code-text").textContent = ""; renderTree(); }
    if (view.versions.length) renderVersions();
  }

  async function showVersion(number) {
    const answer = await api("GET", path("/versions/" + number));
    if (!answer.ok) { fail("Could not load version " + number, answer); return; }
    showFiles(answer.data.version);
    $("#files-panel").scrollIntoView({ block: "start" });
  }

  // ---- diffs -------------------------------------------------------------------------------

  function fillDiffSelects() {
    const from = $("#diff-from");
    const to = $("#diff-to");
    const keep = [from.value, to.value];
    for (const select of [from, to]) {
      clear(select);
      for (const v of view.versions) select.append(el("option", { value: v.number }, "v" + v.number));
    }
    const numbers = view.versions.map((v) => String(v.number));
    const newest = numbers[0];
    const previous = numbers[1] || newest;
    from.value = numbers.includes(keep[0]) ? keep[0] : previous;
    to.value = numbers.includes(keep[1]) ? keep[1] : newest;
    $("#diff-panel").hidden = view.versions.length < 2;
  }

  function diffBlock(text) {
    const pre = el("pre", { class: "diff", tabindex: "0" });
    for (const line of text.split("\n")) {
      if (line === "") continue;
      let kind = null;
      if (line.startsWith("@@")) kind = "hunk";
      else if (line.startsWith("+") && !line.startsWith("+++")) kind = "add";
      else if (line.startsWith("-") && !line.startsWith("---")) kind = "del";
      pre.append(el("span", { class: kind }, line));
    }
    return pre;
  }

  async function compare() {
    const from = $("#diff-from").value;
    const to = $("#diff-to").value;
    const box = clear($("#diff"));
    const answer = await api("GET", path("/diff?from=" + encodeURIComponent(from) + "&to=" + encodeURIComponent(to)));
    if (!answer.ok) {
      $("#diff-summary").textContent = "Could not compare: " + errorMessage(answer);
      return;
    }
    const files = answer.data.files;
    const counts = { added: 0, removed: 0, changed: 0 };
    for (const f of files) counts[f.status] = (counts[f.status] || 0) + 1;
    $("#diff-summary").textContent = files.length === 0
      ? "v" + from + " and v" + to + " have the same files."
      : "From v" + from + " to v" + to + ": " + counts.changed + " changed, " + counts.added + " added, " + counts.removed + " removed.";
    for (const f of files) {
      box.append(el("section", { class: "diff-file", "data-path": f.path, "data-status": f.status },
        el("h3", {}, f.path + " (" + f.status + ")"),
        diffBlock(f.diff)));
    }
    $("#diff-panel").scrollIntoView({ block: "start" });
  }

  // ---- actions -----------------------------------------------------------------------------

  async function download() {
    const button = $("#download-app");
    button.disabled = true;
    try {
      const status = await window.AF.download(path("/zip"), "app.zip");
      if (status !== 200) notice($("#app-notice"), "The download failed (HTTP " + status + ").", "error");
    } finally {
      button.disabled = false;
    }
  }

  async function call(method, suffix, body, done) {
    const answer = await api(method, path(suffix), body);
    if (!answer.ok) { fail("That did not work", answer); return null; }
    showApp(answer.data);
    notice($("#app-notice"), done, "ok");
    announce(done);
    return answer.data;
  }

  async function modify(event) {
    event.preventDefault();
    const prompt = $("#app-modify-prompt").value.trim();
    if (!prompt || !view.app) return;
    $("#quota-prompt").hidden = true;
    const answer = await api("POST", window.AF.spacePath("/ai-builder/modify"), { prompt, appId: view.id, baseVersion: view.app.currentVersion });
    if (answer.status === 202) {
      location.href = "/jobs/" + encodeURIComponent(answer.data.jobId);
      return;
    }
    if (answer.status === 429 && answer.data && answer.data.error === "quota_exceeded") {
      window.AF.showQuota(answer.data.details || {}, answer.headers.get("retry-after"));
      return;
    }
    fail("Could not start the modification", answer);
  }

  function wire() {
    $("#rename-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const title = $("#rename").value.trim();
      if (title) call("PATCH", "", { title }, "Renamed to " + title + ".");
    });
    $("#publish").addEventListener("click", () => call("POST", "/publish", {}, "Published: anyone with the preview address can read this version."));
    $("#unpublish").addEventListener("click", () => call("DELETE", "/publish", undefined, "Unpublished: the preview address no longer answers."));
    $("#delete-app").addEventListener("click", () => call("DELETE", "", undefined, "Deleted. It can be restored for a while from the library's deleted apps."));
    $("#undelete-app").addEventListener("click", () => call("POST", "/undelete", undefined, "Restored to your library."));
    $("#download-app").addEventListener("click", download);
    $("#diff-form").addEventListener("submit", (event) => { event.preventDefault(); compare(); });
    $("#app-modify-form").addEventListener("submit", modify);
    document.addEventListener("af:session", load);
  }

  async function load() {
    const signedIn = !!window.AF.token();
    $("#signed-out").hidden = signedIn;
    if (!signedIn || !view.id) return;
    if (!(await loadApp())) return;
    await loadVersions();
    await showVersion(view.app.currentVersion);
    window.scrollTo(0, 0);
  }

  document.addEventListener("DOMContentLoaded", () => {
    view.id = appIdFromPath();
    view.preview = window.AF.preview($("#app-preview"), $("#app-code"));
    wire();
    load();
  });
})();
