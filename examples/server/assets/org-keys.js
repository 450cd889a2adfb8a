// The API keys page (`/orgs/keys`) of the org chosen in the header: create a key with a role
// (its token is shown once), list the keys, revoke one. Needs the `manage_api_keys`
// permission (admin or owner).
"use strict";

(function () {
  const { api, el, clear, $, notice, errorMessage, announce, formatTime, roleAtLeast, token, ROLES } = window.AF;
  const view = { prefix: null, role: null };

  function status(key) {
    if (key.revokedAt) return "revoked";
    if (key.expiresAt && new Date(key.expiresAt) <= new Date()) return "expired";
    return "active";
  }

  function row(key) {
    const state = status(key);
    return el("tr", { "data-key": key.id },
      el("td", {}, key.name),
      el("td", {}, el("code", {}, key.prefix)),
      el("td", {}, key.role),
      el("td", {}, formatTime(key.createdAt)),
      el("td", {}, key.lastUsedAt ? formatTime(key.lastUsedAt) : "never"),
      el("td", {}, key.expiresAt ? formatTime(key.expiresAt) : "never"),
      el("td", { class: "key-status" }, state),
      el("td", {}, state === "revoked" ? null : el("button", { type: "button", class: "danger revoke", onclick: () => revoke(key) },
        "Revoke", el("span", { class: "visually-hidden" }, " " + key.name))));
  }

  async function loadKeys() {
    const answer = await api("GET", view.prefix + "/api-keys");
    if (!answer.ok) {
      notice($("#keys-notice"), "Could not load the keys: " + errorMessage(answer), "error");
      return;
    }
    const body = clear($("#keys"));
    for (const key of answer.data.keys) body.append(row(key));
    $("#keys-empty").hidden = answer.data.keys.length > 0;
  }

  async function revoke(key) {
    const answer = await api("DELETE", view.prefix + "/api-keys/" + encodeURIComponent(key.id));
    if (!answer.ok) {
      notice($("#keys-notice"), "Could not revoke " + key.name + ": " + errorMessage(answer), "error");
      return;
    }
    notice($("#keys-notice"), key.name + " is revoked: it is refused from its next request on.", "ok");
    await loadKeys();
  }

  async function create(event) {
    event.preventDefault();
    const name = $("#key-name").value.trim();
    if (!name) { $("#key-name").focus(); return; }
    $("#create-key").disabled = true;
    const answer = await api("POST", view.prefix + "/api-keys", { name, role: $("#key-role").value });
    $("#create-key").disabled = false;
    if (!answer.ok) {
      $("#key-result").hidden = true;
      notice($("#key-notice"), "Could not create the key: " + errorMessage(answer), "error");
      return;
    }
    notice($("#key-notice"), "");
    $("#created-key-name").textContent = answer.data.key.name;
    $("#key-token").value = answer.data.token;
    $("#key-result").hidden = false;
    $("#key-name").value = "";
    announce("Key " + answer.data.key.name + " created; it is shown once");
    $("#key-token").focus();
    $("#key-token").select();
    await loadKeys();
  }

  async function copyKey() {
    try {
      await navigator.clipboard.writeText($("#key-token").value);
      announce("Key copied");
    } catch (_) {
      $("#key-token").select();
      announce("Select the key and copy it");
    }
  }

  async function load() {
    $("#signed-out").hidden = !!token();
    $("#org-page").hidden = true;
    const current = await window.AF.currentOrg($("#org-notice"));
    if (!current) return;
    view.prefix = current.prefix;
    view.role = current.org.role;
    $("#org-title").textContent = " of " + current.org.name;
    document.title = "API keys of " + current.org.name + " · appforge";
    if (!roleAtLeast(view.role, "admin")) {
      notice($("#org-notice"), "Only an admin or owner of " + current.org.name + " manages its API keys; you are " + view.role + ".", "warn");
      return;
    }
    const select = clear($("#key-role"));
    for (const r of ROLES.filter((r) => roleAtLeast(view.role, r))) select.append(el("option", { value: r, selected: r === "member" }, r));
    $("#org-page").hidden = false;
    await loadKeys();
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("#key-form").addEventListener("submit", create);
    $("#copy-key").addEventListener("click", copyKey);
    document.addEventListener("af:session", load);
    document.addEventListener("af:space", load);
    load();
  });
})();
