// Copy buttons: <button data-copy="#selector">; announces the result in the button text.
document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-copy]");
  if (!button) return;
  const source = document.querySelector(button.dataset.copy);
  if (!source) return;
  navigator.clipboard.writeText(source.textContent.trim()).then(
    () => { button.textContent = "Copied"; setTimeout(() => { button.textContent = "Copy"; }, 1500); },
    () => { button.textContent = "Select and copy"; }
  );
});

// Dates in the reader's time zone: <time datetime="ISO" data-local-time> (the server renders UTC as a fallback).
const numpayDateFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
function numpayLocalTimes(root) {
  (root || document).querySelectorAll("time[data-local-time]").forEach((el) => {
    const when = new Date(el.getAttribute("datetime"));
    if (!Number.isNaN(when.getTime())) {
      el.textContent = numpayDateFormat.format(when);
      el.title = when.toISOString();
    }
  });
}
document.addEventListener("DOMContentLoaded", () => numpayLocalTimes(document));
document.addEventListener("htmx:afterSwap", (event) => numpayLocalTimes(event.target));

// The toast: one polite live region in base.html; the message is what is announced (not a whole card).
let numpayToastTimer = null;
function numpayToast(text) {
  const toast = document.getElementById("toast");
  if (!toast) return;
  toast.textContent = text;
  toast.classList.add("shown");
  clearTimeout(numpayToastTimer);
  numpayToastTimer = setTimeout(() => toast.classList.remove("shown"), 6000);
}

// The home keeps itself current: it polls /wallet/live/ (JSON) every second while visible, every 10 s while
// hidden (to still notify), and backs off to 30 s after failures. A balance changes in place (focus stays);
// the activity list is replaced only when the server's version changes, and focus inside it is restored.
function numpayLiveHome(home) {
  const liveUrl = home.dataset.liveUrl;
  const activityUrl = home.dataset.activityUrl;
  let version = null;
  let seen = null;
  let failures = 0;
  let timer = null;
  let inFlight = false;

  function schedule() {
    clearTimeout(timer);
    const base = document.hidden ? 10000 : 1000;
    timer = setTimeout(poll, failures ? Math.min(30000, base * 2 ** failures) : base);
  }

  async function refreshActivity() {
    const list = document.getElementById("activity-list");
    if (!list) return;
    const response = await fetch(activityUrl, { headers: { "HX-Request": "true" }, credentials: "same-origin" });
    if (!response.ok) throw new Error(String(response.status));
    const html = await response.text();
    const focused = list.contains(document.activeElement) ? document.activeElement : null;
    const focusKey = focused ? [focused.closest("[data-key]")?.dataset.key, focused.getAttribute("href")] : null;
    const template = document.createElement("template");
    template.innerHTML = html.trim();
    const fresh = template.content.firstElementChild;
    if (!fresh) return;
    list.replaceWith(fresh);
    numpayLocalTimes(fresh);
    if (focusKey) {
      const item = fresh.querySelector(`[data-key="${CSS.escape(focusKey[0] || "")}"]`);
      const target = item && (focusKey[1] ? item.querySelector(`[href="${CSS.escape(focusKey[1])}"]`) : item);
      if (target) target.focus();
    }
  }

  function updateBalances(balances) {
    const changes = [];
    balances.forEach((balance) => {
      const row = home.querySelector(`[data-token="${CSS.escape(balance.token)}"]`);
      const value = row && row.querySelector(".value");
      if (value && balance.value && value.textContent !== balance.value) value.textContent = balance.value;
      const amount = row && row.querySelector(".amount");
      if (amount && amount.textContent.trim() !== balance.display) {
        amount.textContent = balance.display;
        amount.classList.remove("flash");
        void amount.offsetWidth; // restart the highlight animation
        amount.classList.add("flash");
        changes.push(`${balance.token} balance: ${balance.display}`);
      }
    });
    return changes;
  }

  async function poll() {
    if (inFlight) return;
    inFlight = true;
    try {
      const response = await fetch(liveUrl, { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (!response.ok) throw new Error(String(response.status));
      const state = await response.json();
      const balanceChanges = updateBalances(state.balances);
      const arrivals = state.received.filter((item) => seen !== null && !seen.has(item.key));
      seen = new Set(state.received.map((item) => item.key));
      if (version !== null && state.version !== version) await refreshActivity();
      version = state.version;
      if (arrivals.length) {
        const text = arrivals.map((item) => item.text).join(". ");
        numpayToast(balanceChanges.length ? `${text}. ${balanceChanges.join(", ")}.` : `${text}.`);
        if ("Notification" in window && Notification.permission === "granted" && document.hidden) {
          new Notification("Numpay", { body: text, icon: "/static/icons/icon-192.png" });
        }
      } else if (balanceChanges.length) {
        numpayToast(`${balanceChanges.join(", ")}.`);
      }
      failures = 0;
    } catch (error) {
      failures += 1;
    } finally {
      inFlight = false;
      schedule();
    }
  }

  document.addEventListener("visibilitychange", () => { if (!document.hidden) { failures = 0; poll(); } });
  document.body.addEventListener("numpay:changed", () => { version = version === null ? null : "changed"; poll(); });
  window.numpayPollNow = poll;
  poll();
}

// "Tell me when money arrives": offered only where the browser can notify and the user has not decided yet.
function numpayNotifyOffer() {
  const offer = document.querySelector(".notify-offer");
  if (!offer || !("Notification" in window) || Notification.permission !== "default") return;
  offer.hidden = false;
  offer.querySelector("[data-notify-enable]").addEventListener("click", () => {
    Notification.requestPermission().then((permission) => {
      offer.hidden = true;
      numpayToast(permission === "granted" ? "You will be notified when money arrives." : "Notifications stay off.");
    });
  });
}

// The send form: "Max" fills what can be sent now of the selected token; recent recipients fill "To";
// the first error gets focus, so keyboard and screen-reader users land on what to fix.
function numpaySendForm(form) {
  const token = form.querySelector("#token");
  const amount = form.querySelector("#amount");
  function showAvailable() {
    form.querySelectorAll("[data-available-token]").forEach((el) => {
      el.hidden = el.dataset.availableToken !== token.value;
    });
  }
  if (token) { token.addEventListener("change", showAvailable); showAvailable(); }
  const max = form.querySelector("[data-max]");
  if (max) {
    max.addEventListener("click", () => {
      const row = form.querySelector(`[data-available-token="${CSS.escape(token.value)}"]`);
      if (row) { amount.value = row.dataset.available; amount.focus(); }
    });
  }
  form.querySelectorAll("[data-fill-to]").forEach((chip) => chip.addEventListener("click", () => {
    const to = form.querySelector("#to");
    to.value = chip.dataset.fillTo;
    to.focus();
  }));
  const summary = form.querySelector(".error-summary");
  if (summary) summary.focus();
}

document.addEventListener("DOMContentLoaded", () => {
  const home = document.querySelector("[data-live-url]");
  if (home) numpayLiveHome(home);
  numpayNotifyOffer();
  const sendForm = document.querySelector("form.send-form");
  if (sendForm) numpaySendForm(sendForm);
});

// The payment page's status card is replaced every second until final; a persistent polite region outside it
// announces only the status when it changes (not the whole card on every refresh).
document.addEventListener("htmx:afterSwap", (event) => {
  const announcer = document.getElementById("payment-announcer");
  const badge = document.querySelector("#payment-status [data-testid=payment-status]");
  if (!announcer || !badge) return;
  const text = `Status: ${badge.textContent.trim()}`;
  if (announcer.dataset.last !== text) {
    if (announcer.dataset.last !== undefined) announcer.textContent = text;
    announcer.dataset.last = text;
  }
});
document.addEventListener("DOMContentLoaded", () => {
  const announcer = document.getElementById("payment-announcer");
  const badge = document.querySelector("#payment-status [data-testid=payment-status]");
  if (announcer && badge) announcer.dataset.last = `Status: ${badge.textContent.trim()}`;
});
