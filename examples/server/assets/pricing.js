// The pricing page (`/pricing`): the plans as a table, the current plan marked, and an upgrade
// button that starts a Stripe checkout (or says that billing is not configured).
"use strict";

(function () {
  const { api, el, clear, $, formatNumber, notice, errorMessage } = window.AF;

  function money(cents) {
    if (cents === null || cents === undefined) return "–";
    if (cents === 0) return "Free";
    return "$" + (cents / 100).toFixed(cents % 100 === 0 ? 0 : 2);
  }

  function limit(value) {
    return value === null || value === undefined ? "Unlimited" : formatNumber(value);
  }

  function priority(p) {
    return p >= 20 ? "Highest" : p >= 10 ? "High" : "Standard";
  }

  async function upgrade(plan, button) {
    if (!window.AF.token()) {
      notice($("#pricing-notice"), "Sign in with your token first to upgrade.", "warn");
      return;
    }
    button.disabled = true;
    const answer = await api("POST", "/api/stripe/checkout", { plan, interval: "monthly" });
    button.disabled = false;
    if (answer.ok && answer.data && answer.data.url) {
      location.assign(answer.data.url);
      return;
    }
    if (answer.status === 503) {
      notice($("#pricing-notice"), "Billing is not configured on this server (it needs STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET), so upgrades are unavailable here.", "warn");
      return;
    }
    notice($("#pricing-notice"), "Could not start the checkout: " + errorMessage(answer), "error");
  }

  async function load() {
    const [plans, quota] = await Promise.all([
      api("GET", "/api/plans"),
      window.AF.token() ? api("GET", "/api/quota") : Promise.resolve(null),
    ]);
    if (!plans.ok) {
      notice($("#pricing-notice"), "Could not load the plans: " + errorMessage(plans), "error");
      return;
    }
    const current = quota && quota.ok ? quota.data.plan : null;
    const currentPlan = (plans.data.plans || []).find((p) => p.id === current);
    const currentPrice = currentPlan ? currentPlan.price_monthly || 0 : 0;
    const body = clear($("#plans"));
    for (const plan of plans.data.plans || []) {
      const isCurrent = plan.id === current;
      let action;
      if (isCurrent) {
        action = el("span", { class: "badge completed" }, "Current plan");
      } else if ((plan.price_monthly || 0) > currentPrice) {
        const button = el("button", { type: "button", "data-plan": plan.id, "aria-label": "Upgrade to " + plan.name }, "Upgrade");
        button.addEventListener("click", () => upgrade(plan.id, button));
        action = button;
      } else {
        action = el("span", { class: "muted" }, "");
      }
      body.append(el("tr", { class: isCurrent ? "current" : null, "aria-current": isCurrent ? "true" : null, "data-plan": plan.id },
        el("th", { scope: "row" }, plan.name, plan.description ? el("div", { class: "muted" }, plan.description) : null),
        el("td", { class: "num" }, money(plan.price_monthly)),
        el("td", { class: "num" }, limit(plan.daily_generations)),
        el("td", { class: "num" }, limit(plan.monthly_generations)),
        el("td", { class: "num" }, limit(plan.monthly_tokens)),
        el("td", {}, priority(plan.priority || 0)),
        el("td", {}, action)));
    }
    if (quota && quota.ok) {
      const d = quota.data.daily;
      $("#usage").textContent = "Today: " + d.used + " of " + limit(d.limit) + " generations used; resets " + new Date(d.resetsAt).toLocaleString() + ".";
    } else if (!window.AF.token()) {
      $("#usage").textContent = "Sign in to see your current plan.";
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    document.addEventListener("af:session", load);
    load();
  });
})();
