// The members page (`/orgs/members`) of the org chosen in the header: members with their
// roles (change a role, remove someone, leave), the seats used of the total, invitations by
// email and role (the accept link is shown once) and the open invitations (revoke).
"use strict";

(function () {
  const { api, el, clear, $, notice, errorMessage, announce, formatTime, roleAtLeast, claims, token, ROLES } = window.AF;
  const view = { prefix: null, org: null, role: null };

  // The roles the user may grant: up to their own (the rank rule).
  function grantable() {
    return ROLES.filter((r) => roleAtLeast(view.role, r));
  }

  function me() {
    const who = claims(token());
    return who ? who.sub : null;
  }

  function memberRow(member) {
    const self = member.userId === me();
    const manage = roleAtLeast(view.role, "admin") && roleAtLeast(view.role, member.role);
    let role = el("span", {}, member.role);
    if (manage && !self) {
      const select = el("select", { "aria-label": "Role of user " + member.userId, class: "member-role" },
        grantable().map((r) => el("option", { value: r, selected: r === member.role }, r)));
      select.addEventListener("change", () => changeRole(member, select));
      role = select;
    }
    let action = null;
    if (self) {
      action = el("button", { type: "button", class: "danger leave", onclick: leave }, "Leave");
    } else if (manage) {
      action = el("button", { type: "button", class: "danger remove", onclick: () => remove(member) },
        "Remove", el("span", { class: "visually-hidden" }, " user " + member.userId));
    }
    return el("tr", { "data-user": member.userId },
      el("td", { class: "id-cell" }, el("code", {}, member.userId), self ? " (you)" : null),
      el("td", { class: "role" }, role),
      el("td", {}, formatTime(member.joinedAt)),
      el("td", {}, action));
  }

  async function changeRole(member, select) {
    const role = select.value;
    const answer = await api("PATCH", view.prefix + "/members/" + encodeURIComponent(member.userId), { role });
    if (!answer.ok) {
      select.value = member.role;
      notice($("#members-notice"), "Could not change the role: " + errorMessage(answer), "error");
      return;
    }
    member.role = role;
    notice($("#members-notice"), "User " + member.userId + " is now " + role + ".", "ok");
    announce("Role changed to " + role);
  }

  async function remove(member) {
    const answer = await api("DELETE", view.prefix + "/members/" + encodeURIComponent(member.userId));
    if (!answer.ok) {
      notice($("#members-notice"), "Could not remove the member: " + errorMessage(answer), "error");
      return;
    }
    notice($("#members-notice"), "User " + member.userId + " was removed.", "ok");
    await loadMembers();
  }

  async function leave() {
    const answer = await api("POST", view.prefix + "/leave");
    if (!answer.ok) {
      const last = answer.data && answer.data.error === "last_owner";
      notice($("#members-notice"), last
        ? "You are the last owner: make someone else an owner first."
        : "Could not leave: " + errorMessage(answer), "error");
      return;
    }
    window.AF.switchSpace(null, "/orgs");
  }

  async function loadMembers() {
    const answer = await api("GET", view.prefix + "/members");
    if (!answer.ok) {
      notice($("#members-notice"), "Could not load the members: " + errorMessage(answer), "error");
      return;
    }
    const body = clear($("#members"));
    for (const member of answer.data.members) body.append(memberRow(member));
    $("#seats").textContent = window.AF.seatsText(answer.data.seats.used, answer.data.seats.total);
  }

  function invitationRow(invitation) {
    return el("tr", { "data-invitation": invitation.id },
      el("td", {}, invitation.email),
      el("td", {}, invitation.role),
      el("td", {}, formatTime(invitation.createdAt)),
      el("td", {}, formatTime(invitation.expiresAt)),
      el("td", {}, el("button", { type: "button", class: "danger revoke", onclick: () => revoke(invitation) },
        "Revoke", el("span", { class: "visually-hidden" }, " the invitation of " + invitation.email))));
  }

  async function loadInvitations() {
    const answer = await api("GET", view.prefix + "/invitations");
    if (!answer.ok) {
      notice($("#invite-notice"), "Could not load the invitations: " + errorMessage(answer), "error");
      return;
    }
    const open = answer.data.invitations.filter((i) => i.status === "open");
    const body = clear($("#invitations"));
    for (const invitation of open) body.append(invitationRow(invitation));
    $("#invitations-empty").hidden = open.length > 0;
  }

  async function revoke(invitation) {
    const answer = await api("DELETE", view.prefix + "/invitations/" + encodeURIComponent(invitation.id));
    if (!answer.ok) {
      notice($("#invite-notice"), "Could not revoke: " + errorMessage(answer), "error");
      return;
    }
    notice($("#invite-notice"), "The invitation of " + invitation.email + " is revoked; its seat is free.", "ok");
    await Promise.all([loadInvitations(), loadMembers()]);
  }

  async function invite(event) {
    event.preventDefault();
    const email = $("#invite-email").value.trim();
    const role = $("#invite-role").value;
    if (!email) { $("#invite-email").focus(); return; }
    $("#invite").disabled = true;
    const answer = await api("POST", view.prefix + "/invitations", { email, role });
    $("#invite").disabled = false;
    if (!answer.ok) {
      $("#invite-result").hidden = true;
      const data = answer.data || {};
      const text = data.error === "no_seat"
        ? "No seat is free: " + window.AF.seatsText(data.details ? data.details.used : "?", data.details ? data.details.seats : null) + "."
        : "Could not invite " + email + ": " + errorMessage(answer);
      notice($("#invite-notice"), text, "error");
      return;
    }
    notice($("#invite-notice"), "");
    $("#invited-email").textContent = answer.data.invitation.email;
    $("#invited-role").textContent = answer.data.invitation.role;
    $("#invite-mailed").textContent = answer.data.mailed ? " A mail with the link is on its way too." : "";
    // A relative link (no APPFORGE_PUBLIC_URL) is completed with this page's origin.
    $("#accept-url").value = new URL(answer.data.acceptUrl, location.origin).href;
    $("#invite-result").hidden = false;
    $("#invite-email").value = "";
    announce("Invitation created for " + answer.data.invitation.email + "; the link is shown once");
    $("#accept-url").focus();
    $("#accept-url").select();
    await Promise.all([loadInvitations(), loadMembers()]);
  }

  async function copyLink() {
    try {
      await navigator.clipboard.writeText($("#accept-url").value);
      announce("Link copied");
    } catch (_) {
      $("#accept-url").select();
      announce("Select the link and copy it");
    }
  }

  // The org's branding, for admins: display name and colour, the logo (raw image body).
  async function loadBranding() {
    const answer = await api("GET", view.prefix + "/branding");
    if (!answer.ok) return;
    $("#branding-name").value = answer.data.displayName || "";
    $("#branding-color").value = answer.data.primaryColor || "";
    $("#logo-remove").hidden = !answer.data.logo;
  }

  async function saveBranding(event) {
    event.preventDefault();
    const body = { displayName: $("#branding-name").value.trim() || null, primaryColor: $("#branding-color").value.trim() || null };
    const answer = await api("PUT", view.prefix + "/branding", body);
    if (!answer.ok) {
      notice($("#branding-notice"), "Could not save the branding: " + errorMessage(answer), "error");
      return;
    }
    notice($("#branding-notice"), "Branding saved.", "ok");
    document.dispatchEvent(new CustomEvent("af:branding"));
  }

  async function uploadLogo(event) {
    event.preventDefault();
    const file = $("#logo-file").files[0];
    if (!file) return;
    let answer;
    try {
      const response = await fetch(view.prefix + "/branding/logo", {
        method: "PUT",
        headers: { authorization: "Bearer " + token(), "content-type": "application/octet-stream", accept: "application/json" },
        body: file,
      });
      answer = { ok: response.ok, status: response.status, data: await response.json().catch(() => null) };
    } catch (_) {
      answer = { ok: false, status: 0, data: null };
    }
    if (!answer.ok) {
      notice($("#branding-notice"), "Could not upload the logo: " + errorMessage(answer), "error");
      return;
    }
    notice($("#branding-notice"), "Logo uploaded.", "ok");
    $("#logo-remove").hidden = false;
    document.dispatchEvent(new CustomEvent("af:branding"));
  }

  async function removeLogo() {
    const answer = await api("DELETE", view.prefix + "/branding/logo");
    if (!answer.ok) {
      notice($("#branding-notice"), "Could not remove the logo: " + errorMessage(answer), "error");
      return;
    }
    notice($("#branding-notice"), "Logo removed.", "ok");
    $("#logo-remove").hidden = true;
    document.dispatchEvent(new CustomEvent("af:branding"));
  }

  async function load() {
    const signedIn = !!token();
    $("#signed-out").hidden = signedIn;
    $("#org-page").hidden = true;
    const current = await window.AF.currentOrg($("#org-notice"));
    if (!current) return;
    view.prefix = current.prefix;
    view.org = current.org;
    view.role = current.org.role;
    $("#org-title").textContent = " of " + current.org.name;
    document.title = "Members of " + current.org.name + " · appforge";
    $("#my-role").textContent = view.role;
    const select = clear($("#invite-role"));
    for (const r of grantable()) select.append(el("option", { value: r, selected: r === "member" }, r));
    const inviter = roleAtLeast(view.role, "admin");
    $("#invite-panel").hidden = !inviter;
    $("#branding-panel").hidden = !inviter;
    $("#org-page").hidden = false;
    await Promise.all([loadMembers(), inviter ? loadInvitations() : null, inviter ? loadBranding() : null]);
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("#invite-form").addEventListener("submit", invite);
    $("#copy-link").addEventListener("click", copyLink);
    $("#branding-form").addEventListener("submit", saveBranding);
    $("#logo-form").addEventListener("submit", uploadLogo);
    $("#logo-remove").addEventListener("click", removeLogo);
    document.addEventListener("af:session", load);
    document.addEventListener("af:space", load);
    load();
  });
})();
