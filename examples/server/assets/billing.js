// The billing page (`/account/billing`): subscription status, plan, period end,
// cancel-at-period-end, a past-due warning, the customer portal and the quota's usage.
"use strict";

(function () {
  const { api, el, clear, $, formatTime, formatNumber, notice, errorMessage } = window.AF;

  function field(record, snake, camel) {
    return record[snake] !== undefined ? record[snake] : record[camel];
  }

  function item(term, value) {
    return [el("dt", {}, term), el("dd", {}, value)];
  }

  function stat(label, value) {
    return el("div", { class: "stat" }, el("div", { class: "value" }, value), el("div", { class: "label" }, label));
  }

  async function load() {
    const signedIn = !!window.AF.token();
    $("#signed-out").hidden = signedIn;
    const list = clear($("#subscription"));
    clear($("#usage"));
    $("#past-due").hidden = true;
    if (!signedIn) return;
    const params = new URLSearchParams(location.search);
    if (params.get("checkout") === "success") notice($("#billing-notice"), "Thank you: the checkout completed. The new plan applies as soon as Stripe confirms it.", "ok");
    else if (params.get("checkout") === "cancelled") notice($("#billing-notice"), "The checkout was cancelled; nothing was charged.", "warn");

    const [subscription, quota] = await Promise.all([api("GET", "/api/billing/subscription"), api("GET", "/api/quota")]);
    if (subscription.status === 503) {
      notice($("#billing-notice"), "Billing is not configured on this server (STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET are unset), so there is no subscription to manage here.", "warn");
      $("#portal").disabled = true;
      list.append(...item("Plan", quota.ok ? quota.data.plan : "free"), ...item("Status", "no subscription"));
    } else if (!subscription.ok) {
      notice($("#billing-notice"), "Could not load the subscription: " + errorMessage(subscription), "error");
    } else {
      const subs = subscription.data.subscriptions || [];
      const live = subs.find((s) => ["active", "trialing", "past_due"].includes(s.status)) || subs[0];
      list.append(...item("Plan", subscription.data.plan));
      if (!live) {
        list.append(...item("Status", "no subscription"));
      } else {
        const end = field(live, "current_period_end", "currentPeriodEnd");
        const cancelAtEnd = field(live, "cancel_at_period_end", "cancelAtPeriodEnd");
        list.append(
          ...item("Status", live.status),
          ...item("Current period ends", formatTime(end)),
          ...item("Renewal", cancelAtEnd ? "Cancels at the end of the period" : "Renews automatically"));
        if (field(live, "past_due", "pastDue") || live.status === "past_due") {
          const grace = field(live, "grace_until", "graceUntil");
          notice($("#past-due"), "Your last payment failed. Update your payment method in the portal" + (grace ? " before " + formatTime(grace) : "") + " to keep your plan.", "error");
        }
      }
    }
    if (quota.ok) {
      const q = quota.data;
      const box = $("#usage");
      const of = (w) => formatNumber(w.used) + " / " + (w.limit === null ? "∞" : formatNumber(w.limit));
      box.append(stat("generations today", of(q.daily)), stat("generations this month", of(q.monthly)), stat("tokens this month", of(q.tokens)));
    }
  }

  async function portal() {
    const button = $("#portal");
    button.disabled = true;
    const answer = await api("POST", "/api/stripe/portal");
    button.disabled = false;
    if (answer.ok && answer.data && answer.data.url) { location.assign(answer.data.url); return; }
    if (answer.status === 409) notice($("#billing-notice"), "You have no Stripe customer yet: upgrade on the pricing page first.", "warn");
    else if (answer.status === 503) notice($("#billing-notice"), "Billing is not configured on this server.", "warn");
    else notice($("#billing-notice"), "Could not open the portal: " + errorMessage(answer), "error");
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("#portal").addEventListener("click", portal);
    document.addEventListener("af:session", load);
    load();
  });
})();
