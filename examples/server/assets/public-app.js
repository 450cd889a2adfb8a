// The public page of a published app (`/p/{slug}`, which answers this page to a browser and
// the app as JSON to `Accept: application/json`): the app's title and description, the
// published version running in a sandboxed frame (`/p/{slug}/frame`, no network access, an
// origin of its own), the files read-only, and, for an app an org published, the org's name,
// logo and colour. Everything from the answer goes in as text, never as markup.
"use strict";

(function () {
  const { api, el, clear, $, notice, errorMessage } = window.AF;

  // The address's slug, as it appears in the path (still percent-encoded).
  function slugFromPath() {
    const match = location.pathname.match(/^\/p\/([^/]+)$/);
    return match ? match[1] : null;
  }

  function missing() {
    $("#public-missing").hidden = false;
    document.title = "Not published · appforge";
  }

  // The org that published the app: its name, its public logo (alt text: the name) and its
  // colour as the page's accent, set through the CSSOM (the CSP allows no inline style).
  function showOrg(org) {
    const box = $("#public-org");
    if (!org || !org.name) { box.hidden = true; return; }
    box.hidden = false;
    $("#public-org-name").textContent = org.name;
    const logo = $("#public-logo");
    if (org.logoUrl && org.logoUrl.startsWith("/")) {
      logo.setAttribute("alt", org.name);
      logo.setAttribute("src", org.logoUrl);
      logo.hidden = false;
    } else {
      logo.hidden = true;
    }
    if (org.primaryColor && /^#[0-9a-f]{6}$/i.test(org.primaryColor)) {
      $("#public-app").style.setProperty("--accent", org.primaryColor);
    }
  }

  function showFiles(files) {
    const list = clear($("#public-files"));
    files.forEach((file, i) => {
      const heading = "public-file-" + i;
      list.append(el("li", { class: "public-file", "data-path": file.path },
        el("h3", { id: heading, class: "code-title" }, file.path),
        el("pre", { class: "code", tabindex: "0", "aria-labelledby": heading },
          el("code", { text: file.content }))));
    });
    $("#public-file-count").textContent = String(files.length);
  }

  function show(app) {
    document.title = app.title + " · appforge";
    $("#public-title").textContent = app.title;
    const description = $("#public-description");
    description.textContent = app.description || "";
    description.hidden = !app.description;
    $("#public-version").textContent = "v" + app.version;
    showOrg(app.org);
    showFiles(Array.isArray(app.files) ? app.files : []);
    if (typeof app.frameUrl === "string") $("#public-frame").src = app.frameUrl;
    const article = $("#public-app");
    article.hidden = false;
    article.setAttribute("data-loaded", "true");
  }

  async function load() {
    const slug = slugFromPath();
    // The app is public: no token travels with the request.
    const answer = slug ? await api("GET", "/api/p/" + slug, undefined, { token: "" }) : { status: 404 };
    $("#public-loading").hidden = true;
    if (answer.status === 404) { missing(); return; }
    if (!answer.ok || !answer.data) {
      notice($("#public-notice"), "Could not load the app: " + errorMessage(answer), "error");
      return;
    }
    show(answer.data);
  }

  // Runtime errors the preview posts (it cannot reach anything else of this page).
  window.addEventListener("message", (event) => {
    if (event.source !== $("#public-frame").contentWindow || !event.data || event.data.type !== "appforge:preview-error") return;
    $("#public-errors").append(el("li", {}, "Runtime error: " + String(event.data.message || "unknown")));
  });

  document.addEventListener("DOMContentLoaded", load);
})();
