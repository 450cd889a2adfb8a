// The invitation page (`/invitations/{token}`, the `acceptUrl` an invitation answers): the
// signed-in user accepts it (`POST /api/invitations/{token}/accept`) and may then switch the
// pages to the org.
"use strict";

(function () {
  const { api, $, notice, errorMessage, announce, token } = window.AF;
  let joined = null; // {id, name, role} once accepted

  function invitationToken() {
    const match = location.pathname.match(/^\/invitations\/([^/]+)$/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  function signedInView() {
    const signedIn = !!token();
    $("#signed-out").hidden = signedIn;
    $("#accept").disabled = !signedIn || !!joined;
  }

  async function accept() {
    const secret = invitationToken();
    if (!secret) return;
    $("#accept").disabled = true;
    const answer = await api("POST", "/api/invitations/" + encodeURIComponent(secret) + "/accept");
    if (!answer.ok) {
      $("#accept").disabled = false;
      let text = "Could not accept the invitation: " + errorMessage(answer);
      if (answer.status === 404) text = "This invitation is not valid any more: it was used, revoked or has expired. Ask for a new one.";
      else if (answer.status === 409) text = "You could not join: " + errorMessage(answer) + ".";
      notice($("#accept-notice"), text, "error");
      return;
    }
    joined = { id: answer.data.orgId, name: "the organization", role: answer.data.role };
    const org = await api("GET", "/api/orgs/" + encodeURIComponent(joined.id));
    if (org.ok) joined.name = org.data.name;
    notice($("#accept-notice"), "");
    $("#joined-org").textContent = joined.name;
    $("#joined-role").textContent = joined.role;
    $("#accepted").hidden = false;
    $("#accept").hidden = true;
    announce("You joined " + joined.name + " as " + joined.role);
    // The header's space menu now lists the org.
    window.AF.renderSession();
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("#accept").addEventListener("click", accept);
    $("#switch-to-org").addEventListener("click", () => { if (joined) window.AF.switchSpace(joined, "/"); });
    document.addEventListener("af:session", signedInView);
    signedInView();
  });
})();
