// Shared by every page: the signed-in token, the space the pages act in (Personal or an org),
// API calls, server-sent events over fetch (so that the bearer token travels in a header), DOM
// helpers, the sign-in box and the space menu.
"use strict";

(function () {
  const TOKEN_KEY = "appforge.token";
  const ADMIN_KEY = "appforge.adminToken";
  // The space each user last chose, kept per user: `appforge.space.<user id>`.
  const SPACE_KEY = "appforge.space.";
  // Org roles from least to most powerful (`appforge_orgs::Role`).
  const ROLES = ["viewer", "member", "admin", "owner"];

  function token() {
    try { return localStorage.getItem(TOKEN_KEY) || ""; } catch (_) { return ""; }
  }
  function setToken(value) {
    try {
      if (value) localStorage.setItem(TOKEN_KEY, value); else localStorage.removeItem(TOKEN_KEY);
    } catch (_) { /* storage unavailable: the token lives for this page only */ }
  }
  // A single sign-on ends on `/#token=<token>` (/auth/sso/callback): keep the token as a
  // pasted one, and take it out of the address bar and history.
  if (location.hash.startsWith("#token=")) {
    setToken(decodeURIComponent(location.hash.slice("#token=".length)));
    history.replaceState(null, "", location.pathname + location.search);
  }
  function adminToken() {
    try { return localStorage.getItem(ADMIN_KEY) || ""; } catch (_) { return ""; }
  }
  function setAdminToken(value) {
    try {
      if (value) localStorage.setItem(ADMIN_KEY, value); else localStorage.removeItem(ADMIN_KEY);
    } catch (_) { /* ignore */ }
  }

  // The claims of a JWT, read without verifying it (the server verifies every call).
  function claims(jwt) {
    const part = (jwt || "").split(".")[1];
    if (!part) return null;
    try {
      const b64 = part.replace(/-/g, "+").replace(/_/g, "/");
      const text = atob(b64 + "===".slice((b64.length + 3) % 4));
      return JSON.parse(decodeURIComponent(Array.from(text, (c) => "%" + c.charCodeAt(0).toString(16).padStart(2, "0")).join("")));
    } catch (_) {
      return null;
    }
  }

  // ---- the space the pages act in ----------------------------------------------------------
  //
  // Personal (the user's own jobs, apps, uploads and quota under `/api`) or one of the user's
  // orgs (the same routes under `/api/orgs/{id}`). The choice is kept in localStorage per user,
  // with the org's name and the user's role in it, refreshed from `GET /api/orgs` on each page.

  function spaceKey() {
    const who = claims(token());
    return who && who.sub ? SPACE_KEY + who.sub : null;
  }

  function storedSpace() {
    const key = spaceKey();
    if (!key) return null;
    try {
      const value = JSON.parse(localStorage.getItem(key) || "null");
      return value && typeof value.id === "string" && value.id ? value : null;
    } catch (_) {
      return null;
    }
  }

  // Keeps `org` ({id, name, role}) as the current space; null: Personal.
  function setSpace(org) {
    const key = spaceKey();
    if (!key) return;
    try {
      if (org) localStorage.setItem(key, JSON.stringify({ id: org.id, name: org.name, role: org.role }));
      else localStorage.removeItem(key);
    } catch (_) { /* storage unavailable: Personal */ }
  }

  // The current space: {id, name, role, prefix, personal}; `id` and `role` are null in
  // Personal, where the user may do everything.
  function space() {
    const org = storedSpace();
    if (!org) return { id: null, name: "Personal", role: null, prefix: "/api", personal: true };
    return { id: org.id, name: org.name, role: org.role, prefix: "/api/orgs/" + encodeURIComponent(org.id), personal: false };
  }

  // The API prefix of the current space: `/api` or `/api/orgs/{id}`.
  function spacePrefix() { return space().prefix; }

  // `path` (`/jobs`, `/apps/{id}`) in the current space.
  function spacePath(path) { return spacePrefix() + path; }

  // Whether `role` is `least` or above.
  function roleAtLeast(role, least) {
    return ROLES.indexOf(role) >= ROLES.indexOf(least) && ROLES.indexOf(least) >= 0;
  }

  // Whether the current space lets the user generate, modify and upload (Personal, or a
  // role above viewer).
  function canGenerate() {
    const current = space();
    return current.personal || roleAtLeast(current.role, "member");
  }

  // Leaves a page whose job or app belongs to the previous space, else reloads.
  function reloadForSpace() {
    if (/^\/jobs\/./.test(location.pathname)) location.assign("/");
    else if (/^\/apps\/./.test(location.pathname)) location.assign("/apps");
    else location.reload();
  }

  // Switches to `org` (null: Personal) and shows the pages in that space: the page `to`, or
  // this page again (the generate page for a job's, the library for an app's).
  function switchSpace(org, to) {
    setSpace(org);
    if (to) location.assign(to); else reloadForSpace();
  }

  // The current org for the org pages: {id, prefix, org} with `org` from `GET /api/orgs/{id}`
  // (name, slug, the user's role, seats), or null after saying in `container` why there is
  // none (signed out, Personal chosen, not a member any more).
  async function currentOrg(container) {
    if (!token()) { notice(container, ""); return null; }
    const current = space();
    if (current.personal) {
      notice(container, el("span", {},
        "These pages manage the organization chosen in the header's Space menu; Personal is chosen. Pick an org there, or ",
        el("a", { href: "/orgs" }, "create one"), "."), "warn");
      return null;
    }
    const answer = await api("GET", current.prefix);
    if (!answer.ok) {
      notice(container, "Could not load " + current.name + ": " + errorMessage(answer), "error");
      return null;
    }
    notice(container, "");
    return { id: current.id, prefix: current.prefix, org: answer.data };
  }

  // "3 used of 5 seats" (members and open invitations; no total: no limit).
  function seatsText(used, total) {
    return total === null || total === undefined
      ? used + " seats used (no limit)"
      : used + " used of " + total + " seats";
  }

  // The header in the org's branding (`GET /api/orgs/{id}/branding`): its display name and
  // logo in the brand link, its primary colour as the `--accent` custom property (set through
  // the CSSOM, which the pages' CSP allows; no inline style). Personal: appforge's own.
  async function renderBranding() {
    const link = document.querySelector(".top .brand");
    if (!link) return;
    const root = document.documentElement.style;
    const plain = () => {
      root.removeProperty("--accent");
      clear(link);
      link.append("appforge");
    };
    const current = space();
    if (current.personal || !token()) { plain(); return; }
    const answer = await api("GET", current.prefix + "/branding");
    if (!answer.ok || !answer.data) { plain(); return; }
    const brand = answer.data;
    if (brand.primaryColor && /^#[0-9a-f]{6}$/i.test(brand.primaryColor)) root.setProperty("--accent", brand.primaryColor);
    else root.removeProperty("--accent");
    const name = brand.displayName || current.name;
    clear(link);
    link.append(el("span", { class: "brand-name" }, name));
    link.setAttribute("data-org", current.id);
    if (brand.logo && brand.logo.url) {
      try {
        const response = await fetch(brand.logo.url, { headers: { authorization: "Bearer " + token() } });
        if (response.ok) {
          const url = await dataUrl(await response.blob());
          link.prepend(el("img", { class: "brand-logo", src: url, alt: "", width: 24, height: 24 }));
        }
      } catch (_) { /* the name alone */ }
    }
  }
  document.addEventListener("af:branding", () => renderBranding());
  document.addEventListener("af:space", () => renderBranding());

  // The header's space menu: Personal and the user's orgs.
  async function renderSpaces() {
    const box = document.getElementById("space-switch");
    if (!box) return;
    clear(box);
    if (!token()) { box.hidden = true; return; }
    box.hidden = false;
    const current = space();
    const select = el("select", { id: "space-select", name: "space" },
      el("option", { value: "" }, "Personal"));
    if (!current.personal) select.append(el("option", { value: current.id }, current.name + " (" + current.role + ")"));
    select.value = current.personal ? "" : current.id;
    box.append(el("label", { for: "space-select" }, "Space"), select);
    renderBranding();
    let orgs = current.personal ? [] : [current];
    select.addEventListener("change", () => switchSpace(orgs.find((o) => o.id === select.value) || null));
    const answer = await api("GET", "/api/orgs");
    if (!answer.ok || !answer.data || !Array.isArray(answer.data.orgs)) return;
    orgs = answer.data.orgs;
    while (select.options.length > 1) select.remove(1);
    for (const org of orgs) select.append(el("option", { value: org.id }, org.name + " (" + org.role + ")"));
    if (!current.personal) {
      const mine = orgs.find((o) => o.id === current.id);
      if (!mine) {
        // Removed from the org, or it was deleted: back to Personal.
        setSpace(null);
        announce("You are no longer a member of " + current.name + "; showing Personal");
        reloadForSpace();
        return;
      }
      if (mine.role !== current.role || mine.name !== current.name) {
        setSpace(mine);
        document.dispatchEvent(new CustomEvent("af:space"));
      }
    }
    select.value = current.personal ? "" : current.id;
    select.setAttribute("data-loaded", "true");
  }

  // fetch with the user's (or the given) token; answers {status, ok, data, headers}.
  async function api(method, path, body, options) {
    const opts = options || {};
    const headers = { accept: "application/json" };
    const bearer = opts.token !== undefined ? opts.token : token();
    if (bearer) headers.authorization = "Bearer " + bearer;
    const init = { method, headers };
    if (body !== undefined) {
      headers["content-type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(path, init);
    } catch (e) {
      return { status: 0, ok: false, data: { message: "the server cannot be reached" }, headers: new Headers() };
    }
    let data = null;
    const type = response.headers.get("content-type") || "";
    if (type.includes("json")) {
      try { data = await response.json(); } catch (_) { data = null; }
    }
    return { status: response.status, ok: response.ok, data, headers: response.headers, response };
  }

  // Reads a text/event-stream answer and calls onEvent(name, data) per event. Resolves with
  // the final HTTP status when the stream ends; rejects only when `signal` aborts.
  async function sse(path, onEvent, options) {
    const opts = options || {};
    const headers = { accept: "text/event-stream" };
    const bearer = opts.token !== undefined ? opts.token : token();
    if (bearer) headers.authorization = "Bearer " + bearer;
    const response = await fetch(path, { headers, signal: opts.signal });
    if (!response.ok || !response.body) {
      let data = null;
      try { data = await response.json(); } catch (_) { data = null; }
      return { status: response.status, data };
    }
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true }).replace(/\r\n/g, "\n");
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const frame = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        let name = "message";
        const data = [];
        for (const line of frame.split("\n")) {
          if (line.startsWith("event:")) name = line.slice(6).trim();
          else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
        }
        if (data.length === 0) continue;
        let parsed;
        try { parsed = JSON.parse(data.join("\n")); } catch (_) { parsed = data.join("\n"); }
        onEvent(name, parsed);
      }
    }
    return { status: response.status, data: null };
  }

  // Downloads `path` (with the user's token) as a file named by the answer's
  // Content-Disposition, else `fallback`. Answers the HTTP status (0 when unreachable).
  async function download(path, fallback) {
    let response;
    try {
      response = await fetch(path, { headers: { authorization: "Bearer " + token() } });
    } catch (_) {
      return 0;
    }
    if (!response.ok) return response.status;
    const blob = await response.blob();
    const disposition = response.headers.get("content-disposition") || "";
    const match = disposition.match(/filename="([^"]+)"/);
    const link = el("a", { href: URL.createObjectURL(blob), download: match ? match[1] : fallback });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 10000);
    announce("Download started");
    return response.status;
  }

  // el("a", {href: "/", class: "x"}, "text", child): builds DOM without parsing HTML, so
  // text from jobs and models is never interpreted as markup.
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key.startsWith("on") && typeof value === "function") node.addEventListener(key.slice(2), value);
      else if (key === "text") node.textContent = value;
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
    return node;
  }

  function $(selector) { return document.querySelector(selector); }

  function formatDuration(ms) {
    if (ms === null || ms === undefined || Number.isNaN(ms)) return "–";
    if (ms < 1000) return Math.round(ms) + " ms";
    const s = ms / 1000;
    if (s < 60) return s.toFixed(1) + " s";
    const m = Math.floor(s / 60);
    return m + " min " + Math.round(s - m * 60) + " s";
  }

  function formatTime(iso) {
    if (!iso) return "–";
    const d = new Date(iso);
    return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
  }

  function formatNumber(n) {
    return n === null || n === undefined ? "–" : Number(n).toLocaleString();
  }

  function badge(status) {
    return el("span", { class: "badge " + status }, status);
  }

  // A polite live region: screen readers hear progress without losing focus.
  function announce(text) {
    let region = document.getElementById("announcer");
    if (!region) {
      region = el("div", { id: "announcer", class: "visually-hidden", role: "status", "aria-live": "polite" });
      document.body.append(region);
    }
    region.textContent = text;
  }

  function notice(container, text, kind) {
    clear(container);
    if (!text) { container.hidden = true; return; }
    container.hidden = false;
    container.className = "notice" + (kind ? " " + kind : "");
    if (text instanceof Node) container.append(text); else container.textContent = text;
  }

  function errorMessage(result) {
    if (result && result.data && result.data.message) return result.data.message;
    if (result && result.status === 0) return "the server cannot be reached";
    return "the request failed (HTTP " + (result ? result.status : "?") + ")";
  }

  // The upgrade prompt of a generation refused for quota: the window that refused it, its use
  // and the time it resets (#quota-prompt and #quota-detail on the page).
  function showQuota(status, retryAfter) {
    const win = status[status.deniedBy] || status.daily || {};
    let resets = win.resetsAt ? new Date(win.resetsAt) : null;
    if (!resets && retryAfter) resets = new Date(Date.now() + Number(retryAfter) * 1000);
    const limit = win.limit !== undefined && win.limit !== null ? win.limit : "?";
    const plan = status.plan || "current";
    const text = "You have used " + (win.used !== undefined ? win.used : limit) + " of " + limit +
      " generations on the " + plan + " plan." + (resets ? " It resets at " + resets.toLocaleString() + "." : "") +
      " Upgrade for more.";
    $("#quota-detail").textContent = " " + text;
    $("#quota-detail").setAttribute("data-resets-at", resets ? resets.toISOString() : "");
    $("#quota-prompt").hidden = false;
    announce("Generation limit reached");
  }

  // The sign-in box in the header: a token field and single sign-on through an org, or who
  // the page acts for.
  function renderSession() {
    const box = document.getElementById("session");
    if (!box) return;
    clear(box);
    const current = token();
    const who = claims(current);
    if (current) {
      const name = who && who.email ? who.email : "an unnamed user";
      const id = who && who.sub ? who.sub : "unknown id";
      box.append(
        el("span", { class: "who", id: "who" }, "Signed in as ", el("strong", {}, name), " (user ", el("code", {}, id), ")"),
        el("button", { type: "button", class: "secondary", id: "sign-out", onclick: () => { setToken(""); renderSession(); document.dispatchEvent(new CustomEvent("af:session")); } }, "Sign out"),
      );
    } else {
      const input = el("input", { type: "password", id: "token-input", name: "token", autocomplete: "off", placeholder: "paste the token the server printed" });
      const form = el("form", { id: "sign-in", "aria-label": "Sign in" },
        el("label", { for: "token-input" }, "Token"),
        input,
        el("button", { type: "submit" }, "Sign in"));
      form.addEventListener("submit", (event) => {
        event.preventDefault();
        const value = input.value.trim().replace(/^Bearer\s+/i, "").replace(/^export TOKEN=/, "");
        if (!value) return;
        if (!claims(value)) {
          announce("That does not look like a token");
          input.setAttribute("aria-invalid", "true");
          return;
        }
        setToken(value);
        renderSession();
        document.dispatchEvent(new CustomEvent("af:session"));
      });
      // Single sign-on: the org's provider signs the user in and sends them back to
      // `/#token=<token>` (/auth/sso/start, /auth/sso/callback).
      const org = el("input", { type: "text", id: "sso-org", name: "org", autocomplete: "organization", placeholder: "your organization's slug" });
      const sso = el("form", { id: "sso-sign-in", "aria-label": "Sign in with SSO" },
        el("label", { for: "sso-org" }, "Organization"),
        org,
        el("button", { type: "submit" }, "Sign in with SSO"));
      sso.addEventListener("submit", (event) => {
        event.preventDefault();
        const value = org.value.trim();
        if (!value) {
          announce("Enter your organization's slug to sign in with SSO");
          org.setAttribute("aria-invalid", "true");
          return;
        }
        location.assign("/auth/sso/start?org=" + encodeURIComponent(value));
      });
      box.append(form, sso);
    }
    renderSpaces();
  }

  function markNav() {
    const path = location.pathname;
    for (const link of document.querySelectorAll(".top nav a")) {
      const href = link.getAttribute("href");
      const here = href === "/" ? (path === "/" || /^\/jobs\/./.test(path))
        : path === href || (href === "/apps" && path.startsWith("/apps/"))
          || (href === "/orgs" && (path.startsWith("/orgs/") || path.startsWith("/invitations/")));
      if (here) link.setAttribute("aria-current", "page");
    }
    for (const link of document.querySelectorAll(".subnav a")) {
      if (link.getAttribute("href") === path) link.setAttribute("aria-current", "page");
    }
  }

  // Reads a blob (a file, an upload) as a data: URL (the pages' CSP allows `img-src data:`).
  function dataUrl(blob) {
    return new Promise((resolve, reject) => {
      const reader = new FileReader();
      reader.onload = () => resolve(reader.result);
      reader.onerror = () => reject(reader.error);
      reader.readAsDataURL(blob);
    });
  }

  // The thumbnails of a job's attached uploads (`/uploads/{id}` of the current space, read
  // with the token).
  function thumbnails(ids) {
    const list = el("ul", { class: "thumbs", "aria-label": "Reference images" });
    (ids || []).forEach((id, i) => {
      const item = el("li", { class: "thumb", "data-upload": id });
      list.append(item);
      fetch(spacePath("/uploads/" + encodeURIComponent(id)), { headers: { authorization: "Bearer " + token() } })
        .then((response) => (response.ok ? response.blob() : null))
        .then((blob) => (blob ? dataUrl(blob) : null))
        .then((url) => { if (url) item.append(el("img", { src: url, alt: "Reference image " + (i + 1) })); })
        .catch(() => {});
    });
    return list;
  }


  // ---- the live preview --------------------------------------------------------------------
  //
  // A "Preview / Code" switch over `code` (the file tree and code view), a device-width
  // switch and the app running in a frame with `sandbox="allow-scripts allow-forms
  // allow-modals"` (never
  // allow-same-origin): the frame's address carries a ticket for that one version, never the
  // user's token, and the document it loads has no network access. Build errors come with
  // the JSON and show under the frame (the frame shows them as an overlay); runtime errors
  // are posted by the preview (`appforge:preview-error`) and listed under it too.

  const DEVICES = [["Phone", "375px"], ["Tablet", "768px"], ["Desktop", ""]];

  function preview(container, code) {
    const frame = el("iframe", { class: "preview-frame", sandbox: "allow-scripts allow-forms allow-modals", title: "Preview of the app", referrerpolicy: "no-referrer" });
    const status = el("p", { class: "preview-status muted", "aria-live": "polite" });
    const errors = el("ul", { class: "preview-errors", "aria-label": "Errors of the preview" });
    const stage = el("div", { class: "preview" }, el("div", { class: "preview-stage" }, frame), status, errors);
    const toggles = {};
    const widths = {};
    function show(which) {
      stage.hidden = which !== "preview";
      code.hidden = which !== "code";
      for (const [name, button] of Object.entries(toggles)) button.setAttribute("aria-pressed", String(name === which));
      devices.hidden = which !== "preview";
    }
    function width(size) {
      frame.style.width = size || "100%";
      for (const [value, button] of Object.entries(widths)) button.setAttribute("aria-pressed", String(value === size));
    }
    for (const [name, label] of [["preview", "Preview"], ["code", "Code"]]) {
      toggles[name] = el("button", { type: "button", class: "toggle", "data-view": name, "aria-pressed": "false", onclick: () => show(name) }, label);
    }
    const devices = el("span", { class: "devices", role: "group", "aria-label": "Preview width" },
      DEVICES.map(([label, size]) => (widths[size] = el("button", { type: "button", class: "toggle", "data-width": label.toLowerCase(), "aria-pressed": "false", onclick: () => width(size) }, label))));
    const bar = el("div", { class: "row view-bar" },
      el("span", { class: "view-toggle", role: "group", "aria-label": "View" }, toggles.preview, toggles.code),
      el("span", { class: "grow" }), devices);
    container.append(bar, stage);
    width("");
    show("preview");
    window.addEventListener("message", (event) => {
      if (event.source !== frame.contentWindow || !event.data || event.data.type !== "appforge:preview-error") return;
      errors.append(el("li", { class: "runtime" }, "Runtime error: " + String(event.data.message || "unknown")));
    });
    let shown = null;
    return {
      // Loads `version` of `appId` in the current space (again, when asked to `refresh`).
      async show(appId, version, refresh) {
        const key = spacePrefix() + "|" + appId + "|" + version;
        if (key === shown && !refresh) return;
        shown = key;
        clear(errors);
        status.textContent = "Building version " + version + "…";
        const answer = await api("GET", spacePath("/apps/" + encodeURIComponent(appId) + "/versions/" + version + "/preview"));
        if (shown !== key) return;
        if (!answer.ok) { status.textContent = "No preview: " + errorMessage(answer); return; }
        const build = answer.data.build || {};
        if (build.status === "error") {
          const e = build.error || {};
          const place = e.file ? e.file + (e.line ? ":" + e.line + ":" + e.column : "") + ": " : "";
          status.textContent = "Version " + version + " does not build.";
          errors.append(el("li", { class: "build" }, "Build error: " + place + (e.message || "")));
        } else {
          status.textContent = "Version " + version + " (" + (build.modules || []).length + " modules)";
        }
        frame.setAttribute("data-version", String(version));
        frame.src = answer.data.frameUrl;
      },
      view: show,
    };
  }

  window.AF = {
    token, setToken, adminToken, setAdminToken, claims, api, sse, el, clear, $,
    formatDuration, formatTime, formatNumber, badge, announce, notice, errorMessage, renderSession, showQuota,
    download, dataUrl, thumbnails,
    ROLES, space, setSpace, switchSpace, spacePrefix, spacePath, roleAtLeast, canGenerate, currentOrg, seatsText,
    preview,
  };

  document.addEventListener("DOMContentLoaded", () => {
    markNav();
    renderSession();
  });
})();
