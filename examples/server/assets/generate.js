// The generate page (`/` and `/jobs/{id}`): submit a prompt, follow the job's events, show the
// file tree, code, tokens and elapsed time, then the result with download, modify and plan.
"use strict";

(function () {
  const { api, sse, el, clear, $, formatDuration, formatNumber, badge, announce, notice, errorMessage, spacePath } = window.AF;

  const view = {
    jobId: null,
    job: null,
    files: new Map(), // path -> {state: "writing" | "done", content: string | null}
    selected: null,
    abort: null,
    timer: null,
    startedAt: null,
    app: null, // {files, dependencies, setupInstructions, name} of a finished app
    saved: null, // {appId, version}: where the finished app is saved in the library
    preview: null, // the live preview of the saved version (AF.preview)
    prompt: "",
  };

  function jobIdFromPath() {
    const match = location.pathname.match(/^\/jobs\/([^/]+)$/);
    return match ? decodeURIComponent(match[1]) : null;
  }

  function signedInView() {
    const signedIn = !!window.AF.token();
    $("#signed-out").hidden = signedIn;
    $("#generate").disabled = !signedIn;
    spaceView();
    return signedIn;
  }

  // A viewer of the current org reads its jobs and apps but cannot generate or change them:
  // the Generate button, the reference images, Modify and Plan are hidden, and the page says why.
  function spaceView() {
    const current = window.AF.space();
    const allowed = !window.AF.token() || window.AF.canGenerate();
    $("#generate").hidden = !allowed;
    $("#attach").hidden = !allowed;
    $("#modify-form").hidden = !allowed;
    $("#plan").hidden = !allowed;
    $("#prompt").disabled = !allowed;
    $("#viewer-notice").hidden = allowed;
    if (!allowed) {
      $("#viewer-org").textContent = current.name;
      $("#viewer-role").textContent = current.role || "viewer";
    }
    const where = $("#space-name");
    where.textContent = current.personal ? "your personal space" : current.name;
  }

  // ---- file tree and code view -------------------------------------------------------------

  function renderTree() {
    const list = clear($("#file-tree"));
    const paths = Array.from(view.files.keys()).sort();
    $("#tree-empty").hidden = paths.length > 0;
    $("#files-count").textContent = String(paths.length);
    for (const path of paths) {
      const file = view.files.get(path);
      const done = file.state === "done";
      const button = el("button", {
        type: "button",
        "aria-pressed": view.selected === path ? "true" : "false",
        "data-path": path,
        "data-state": file.state,
        onclick: () => select(path),
      },
      el("span", { class: "state " + (done ? "done" : "writing"), "aria-hidden": "true" }, done ? "✓" : "…"),
      path,
      el("span", { class: "visually-hidden" }, done ? " (complete)" : " (being written)"));
      list.append(el("li", {}, button));
    }
  }

  function select(path) {
    view.selected = path;
    const file = view.files.get(path);
    $("#code-title").textContent = path;
    const code = $("#code-text");
    if (file && file.content !== null && file.content !== undefined) {
      code.textContent = file.content;
    } else if (file && file.state === "done") {
      code.textContent = "(the content is shown when the job completes)";
    } else {
      code.textContent = "(being written…)";
    }
    renderTree();
  }

  function setFile(path, state, content) {
    const known = view.files.get(path) || { state: "writing", content: null };
    known.state = state;
    if (content !== undefined) known.content = content;
    view.files.set(path, known);
    if (!view.selected) view.selected = path;
    renderTree();
    if (view.selected === path) select(path);
  }

  // ---- job header --------------------------------------------------------------------------

  function setStatus(status) {
    const holder = clear($("#job-status"));
    holder.append(badge(status));
    $("#cancel").hidden = !(status === "pending" || status === "processing");
    if (status === "pending" || status === "processing") startClock(); else stopClock();
  }

  function setTokens(input, output) {
    if (input === null && output === null) return;
    $("#tokens").textContent = formatNumber(input || 0) + " / " + formatNumber(output || 0);
  }

  function startClock() {
    if (view.timer) return;
    const tick = () => {
      const since = view.startedAt ? new Date(view.startedAt).getTime() : Date.now();
      $("#elapsed").textContent = formatDuration(Math.max(0, Date.now() - since));
    };
    tick();
    view.timer = setInterval(tick, 250);
  }

  function stopClock() {
    if (view.timer) clearInterval(view.timer);
    view.timer = null;
  }

  function showJob(job) {
    view.job = job;
    if (job.kind === "full_app" && job.prompt) view.prompt = job.prompt;
    view.startedAt = job.startedAt || job.createdAt || view.startedAt;
    $("#job").hidden = false;
    const kinds = { full_app: "New app", modify: "Modification", plan_phases: "Plan in phases" };
    $("#job-heading").textContent = (kinds[job.kind] || job.kind) + " · " + job.id.slice(0, 8);
    $("#job-prompt").textContent = job.prompt ? "“" + job.prompt + "”" : "";
    const shown = $("#job-attachments");
    const ids = job.attachments || [];
    if (shown.getAttribute("data-ids") !== ids.join(",")) {
      shown.setAttribute("data-ids", ids.join(","));
      clear(shown);
      if (ids.length) shown.append(window.AF.thumbnails(ids));
    }
    setStatus(job.status);
    setTokens(job.inputTokens, job.outputTokens);
    if (job.durationMs !== null && job.durationMs !== undefined && job.status !== "pending" && job.status !== "processing") {
      $("#elapsed").textContent = formatDuration(job.durationMs);
    }
  }

  // ---- reference images --------------------------------------------------------------------

  const attached = []; // {id, url}: uploads sent as `attachments` with the next generation

  async function attach(file) {
    if (attached.length >= 4) {
      notice($("#form-notice"), "At most 4 images can be attached.", "error");
      return;
    }
    let response;
    try {
      response = await fetch(spacePath("/uploads"), {
        method: "POST",
        headers: { authorization: "Bearer " + window.AF.token(), accept: "application/json" },
        body: file,
      });
    } catch (e) {
      notice($("#form-notice"), "Could not attach the image: the server cannot be reached.", "error");
      return;
    }
    const data = await response.json().catch(() => null);
    if (response.status !== 201 || !data) {
      notice($("#form-notice"), "Could not attach the image: " + ((data && data.message) || response.status), "error");
      return;
    }
    notice($("#form-notice"), "");
    attached.push({ id: data.id, url: await window.AF.dataUrl(file) });
    renderAttachments();
    announce("Image attached");
  }

  function renderAttachments() {
    const list = clear($("#attachments"));
    attached.forEach((item, i) => {
      list.append(el("li", { class: "thumb", "data-upload": item.id },
        el("img", { src: item.url, alt: "Attached image " + (i + 1) }),
        el("button", {
          type: "button", class: "secondary remove", "aria-label": "Remove image " + (i + 1),
          onclick: () => { attached.splice(i, 1); renderAttachments(); },
        }, "Remove")));
    });
  }

  function attachFiles(files) {
    for (const file of Array.from(files || [])) {
      if (file.type.startsWith("image/")) attach(file);
    }
  }

  function reset() {
    if (view.abort) view.abort.abort();
    stopClock();
    view.files = new Map();
    view.selected = null;
    view.app = null;
    view.saved = null;
    view.job = null;
    view.startedAt = null;
    $("#result").hidden = true;
    $("#plan-result").hidden = true;
    $("#app-result").hidden = true;
    // The files stream in as code; the preview comes back with the saved version.
    $("#job-preview").hidden = true;
    view.preview.view("code");
    $("#code-title").textContent = "No file selected";
    $("#code-text").textContent = "";
    $("#tokens").textContent = "–";
    $("#elapsed").textContent = "–";
    notice($("#job-notice"), "");
    renderTree();
  }

  // ---- following a job ---------------------------------------------------------------------

  async function follow(id, resume) {
    if (resume) {
      if (view.abort) view.abort.abort();
    } else {
      reset();
    }
    view.jobId = id;
    $("#job").hidden = false;
    $("#job-heading").textContent = "Job " + id.slice(0, 8);
    const abort = new AbortController();
    view.abort = abort;
    let terminal = false;
    try {
      const outcome = await sse(spacePath("/jobs/" + encodeURIComponent(id) + "/events"), (name, data) => {
        if (name === "state") {
          showJob(data);
          if (data.status === "completed") { terminal = true; finished(data); }
        } else if (name === "progress") {
          progress(data);
        } else if (name === "completed") {
          terminal = true;
          finished(data);
        } else if (name === "failed") {
          terminal = true;
          const job = data.job || {};
          if (job.id) showJob(job); else setStatus("failed");
          notice($("#job-notice"), "The generation failed: " + (data.error || "unknown error"), "error");
          announce("The generation failed");
        } else if (name === "cancelled") {
          terminal = true;
          showJob(data);
          notice($("#job-notice"), "The job was cancelled.", "warn");
          announce("The job was cancelled");
        }
      }, { signal: abort.signal });
      if (outcome.status === 404) {
        $("#job").hidden = false;
        notice($("#job-notice"), "No such job for the signed-in user.", "error");
        return;
      }
      if (outcome.status === 401) {
        notice($("#job-notice"), "Sign in to see this job.", "warn");
        return;
      }
      if (!terminal && !abort.signal.aborted) {
        // The stream ended early (server restart): read the job as it is now.
        const again = await api("GET", spacePath("/jobs/" + encodeURIComponent(id)));
        if (again.ok) {
          showJob(again.data);
          if (again.data.status === "completed") finished(again.data);
          else if (again.data.status === "pending" || again.data.status === "processing") {
            setTimeout(() => { if (view.jobId === id) follow(id, true); }, 2000);
          }
        }
      }
    } catch (error) {
      if (!abort.signal.aborted) notice($("#job-notice"), "Lost the connection to the job's events.", "error");
    }
  }

  function progress(event) {
    if (view.job && view.job.status === "pending") setStatus("processing");
    if (event.type === "fileStarted" && event.path) {
      setFile(event.path, "writing");
      announce("Writing " + event.path);
    } else if (event.type === "fileCompleted" && event.path) {
      setFile(event.path, "done");
    } else if (event.type === "tokens") {
      setTokens(event.input, event.output);
    }
  }

  async function finished(job) {
    showJob(job);
    announce("The job completed");
    const result = job.result || {};
    $("#result").hidden = false;
    if (job.kind === "plan_phases") {
      showPlan(result.plan || {});
      return;
    }
    let app = null;
    if (job.kind === "full_app") {
      app = { name: result.name, files: result.files || [], dependencies: result.dependencies || {}, setupInstructions: result.setupInstructions, scaffolded: result.scaffolded || [], setupCommands: result.setupCommands || [] };
      $("#result-summary").textContent = [result.name, result.description].filter(Boolean).join(": ");
    } else {
      const answer = await api("GET", spacePath("/jobs/" + encodeURIComponent(job.id) + "/app"));
      const change = result.changeSet || {};
      $("#result-summary").textContent = change.summary || "The change set was applied.";
      if (answer.ok) app = answer.data;
      else notice($("#job-notice"), "The change could not be applied: " + errorMessage(answer), "error");
    }
    if (!app) return;
    view.app = app;
    view.saved = result.appId ? { appId: result.appId, version: result.version } : null;
    const open = $("#open-app");
    open.hidden = !view.saved;
    if (view.saved) {
      open.setAttribute("href", "/apps/" + encodeURIComponent(view.saved.appId));
      open.textContent = "Open in your apps (version " + view.saved.version + ")";
      // A modification saves the next version: the preview follows it.
      $("#job-preview").hidden = false;
      view.preview.view("preview");
      view.preview.show(view.saved.appId, view.saved.version);
    }
    for (const file of app.files) setFile(file.path, "done", file.content);
    if (app.files.length > 0 && (!view.selected || !view.files.get(view.selected))) select(app.files[0].path);
    else if (view.selected) select(view.selected);
    const deps = clear($("#dependencies"));
    const names = Object.keys(app.dependencies || {});
    if (names.length === 0) deps.append(el("li", { class: "muted" }, "none"));
    for (const name of names) deps.append(el("li", {}, el("code", {}, name + "@" + app.dependencies[name])));
    // The commands are those of the downloaded folder's README (from its package.json); the
    // model's own notes follow them.
    const commands = app.setupCommands || [];
    $("#setup").textContent = commands.length ? commands.map((c, i) => (i + 1) + ". " + c).join("\n") : (app.setupInstructions || "No setup steps.");
    const added = app.scaffolded || [];
    $("#scaffolded").textContent = added.length ? "The download adds the project files the generation left out: " + added.join(", ") + "." : "";
    $("#setup-notes").textContent = commands.length && app.setupInstructions ? "Notes: " + app.setupInstructions : "";
    $("#app-result").hidden = false;
  }

  function showPlan(plan) {
    const list = clear($("#phases"));
    for (const phase of plan.phases || []) {
      const features = el("ul", {}, (phase.features || []).map((f) => el("li", {}, f)));
      list.append(el("li", {}, el("strong", {}, phase.name || "Phase " + phase.number), " — ", phase.description || "", features));
    }
    $("#result-summary").textContent = "A plan in " + (plan.phases || []).length + " phases.";
    $("#plan-result").hidden = false;
    $("#workspace").hidden = true;
  }

  // ---- starting jobs -----------------------------------------------------------------------

  async function start(path, body) {
    notice($("#form-notice"), "");
    $("#quota-prompt").hidden = true;
    const answer = await api("POST", path, body);
    if (answer.status === 202) {
      const id = answer.data.jobId;
      history.pushState({ job: id }, "", "/jobs/" + encodeURIComponent(id));
      follow(id);
      $("#job").scrollIntoView({ block: "start" });
      return true;
    }
    if (answer.status === 429 && answer.data && answer.data.error === "quota_exceeded") {
      window.AF.showQuota(answer.data.details || {}, answer.headers.get("retry-after"));
      return false;
    }
    if (answer.status === 401) {
      notice($("#form-notice"), "Sign in first: your token is missing or expired.", "error");
      return false;
    }
    notice($("#form-notice"), "Could not start the job: " + errorMessage(answer), "error");
    return false;
  }

  function wire() {
    $("#attach-input").addEventListener("change", (event) => {
      attachFiles(event.target.files);
      event.target.value = "";
    });
    document.addEventListener("paste", (event) => {
      const files = event.clipboardData && event.clipboardData.files;
      if (files && files.length) { event.preventDefault(); attachFiles(files); }
    });
    const zone = $("#prompt-form");
    zone.addEventListener("dragover", (event) => { event.preventDefault(); zone.classList.add("dropping"); });
    zone.addEventListener("dragleave", () => zone.classList.remove("dropping"));
    zone.addEventListener("drop", (event) => {
      event.preventDefault();
      zone.classList.remove("dropping");
      attachFiles(event.dataTransfer && event.dataTransfer.files);
    });
    $("#prompt-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      const prompt = $("#prompt").value.trim();
      if (!prompt) { $("#prompt").focus(); return; }
      const button = $("#generate");
      button.disabled = true;
      try {
        view.prompt = prompt;
        const body = { prompt };
        if (attached.length) body.attachments = attached.map((a) => a.id);
        if (await start(spacePath("/ai-builder/full-app"), body)) {
          attached.length = 0;
          renderAttachments();
        }
      } finally {
        button.disabled = !window.AF.token() || !window.AF.canGenerate();
      }
    });
    $("#cancel").addEventListener("click", async () => {
      if (!view.jobId) return;
      $("#cancel").disabled = true;
      const answer = await api("DELETE", spacePath("/jobs/" + encodeURIComponent(view.jobId)));
      $("#cancel").disabled = false;
      if (!answer.ok) notice($("#job-notice"), "Could not cancel: " + errorMessage(answer), "error");
      else announce("Cancellation requested");
    });
    $("#download").addEventListener("click", download);
    $("#modify-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      const prompt = $("#modify-prompt").value.trim();
      if (!prompt || !view.app) return;
      // A saved app is changed by reference, so that the change becomes its next version;
      // an app that was not saved is sent whole.
      const body = view.saved
        ? { prompt, appId: view.saved.appId, baseVersion: view.saved.version }
        : { prompt, currentAppState: { files: view.app.files.map((f) => ({ path: f.path, content: f.content })) } };
      if (await start(spacePath("/ai-builder/modify"), body)) $("#modify-prompt").value = "";
    });
    $("#plan").addEventListener("click", () => {
      const prompt = view.prompt || $("#prompt").value.trim();
      if (!prompt) { notice($("#form-notice"), "Write a prompt to plan first.", "warn"); return; }
      start(spacePath("/ai-builder/plan-phases"), { prompt });
    });
    window.addEventListener("popstate", () => {
      const id = jobIdFromPath();
      if (id) follow(id); else { reset(); $("#job").hidden = true; }
    });
    document.addEventListener("af:space", spaceView);
    document.addEventListener("af:session", () => {
      signedInView();
      const id = jobIdFromPath();
      if (id) follow(id);
    });
  }

  async function download() {
    if (!view.jobId) return;
    const button = $("#download");
    button.disabled = true;
    try {
      const status = await window.AF.download(spacePath("/jobs/" + encodeURIComponent(view.jobId) + "/zip"), "app.zip");
      if (status !== 200) notice($("#job-notice"), "The download failed (HTTP " + status + ").", "error");
    } finally {
      button.disabled = false;
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    view.preview = window.AF.preview($("#job-preview"), $("#workspace"));
    wire();
    const signedIn = signedInView();
    const id = jobIdFromPath();
    if (id && signedIn) follow(id);
    else if (id) { $("#job").hidden = false; notice($("#job-notice"), "Sign in to see this job.", "warn"); }
  });
})();
