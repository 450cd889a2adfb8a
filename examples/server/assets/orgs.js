// The organizations page (`/orgs`): create an org (the signed-in user becomes its owner) and
// list the user's orgs with their role and seats; a row switches the space to that org and
// opens its members, API keys or audit log.
"use strict";

(function () {
  const { api, el, clear, $, notice, errorMessage, announce, roleAtLeast, seatsText } = window.AF;

  function row(org) {
    const current = window.AF.space().id === org.id;
    const open = (to, label, cls) => el("button", {
      type: "button",
      class: "secondary " + cls,
      onclick: () => window.AF.switchSpace(org, to),
    }, label, el("span", { class: "visually-hidden" }, " of " + org.name));
    const admin = roleAtLeast(org.role, "admin");
    return el("tr", { "data-org": org.id, class: current ? "current" : null },
      el("td", {}, el("strong", {}, org.name), current ? el("span", { class: "muted" }, " (current space)") : null),
      el("td", {}, el("code", {}, org.slug)),
      el("td", { class: "role" }, org.role),
      el("td", { class: "seats" }, seatsText(org.seatsUsed, org.seats)),
      el("td", {}, el("div", { class: "row" },
        current ? null : el("button", { type: "button", class: "switch", onclick: () => window.AF.switchSpace(org) }, "Switch to", el("span", { class: "visually-hidden" }, " " + org.name)),
        open("/orgs/members", "Members", "members"),
        admin ? open("/orgs/keys", "API keys", "keys") : null,
        admin ? open("/orgs/audit", "Audit log", "audit") : null)));
  }

  async function load() {
    const signedIn = !!window.AF.token();
    $("#signed-out").hidden = signedIn;
    $("#create").disabled = !signedIn;
    const body = clear($("#orgs"));
    if (!signedIn) { $("#orgs-empty").hidden = true; return; }
    const answer = await api("GET", "/api/orgs");
    if (!answer.ok) {
      notice($("#orgs-notice"), "Could not load your organizations: " + errorMessage(answer), "error");
      return;
    }
    notice($("#orgs-notice"), "");
    for (const org of answer.data.orgs) body.append(row(org));
    $("#orgs-empty").hidden = answer.data.orgs.length > 0;
  }

  async function create(event) {
    event.preventDefault();
    const name = $("#org-name").value.trim();
    const slug = $("#org-slug").value.trim();
    if (!name) { $("#org-name").focus(); return; }
    const button = $("#create");
    button.disabled = true;
    const body = slug ? { name, slug } : { name };
    const answer = await api("POST", "/api/orgs", body);
    button.disabled = false;
    if (!answer.ok) {
      const taken = answer.data && answer.data.error === "slug_taken";
      notice($("#create-notice"), taken
        ? "That slug is taken: choose another."
        : "Could not create the organization: " + errorMessage(answer), "error");
      return;
    }
    const org = answer.data;
    $("#org-name").value = "";
    $("#org-slug").value = "";
    notice($("#create-notice"), el("span", {}, "Created ", el("strong", {}, org.name), " (", el("code", {}, org.slug),
      "); you are its owner. Open its members to invite people."), "ok");
    announce("Created " + org.name);
    await load();
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("#create-org").addEventListener("submit", create);
    document.addEventListener("af:session", load);
    document.addEventListener("af:space", load);
    load();
  });
})();
