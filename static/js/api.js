// Same-origin JSON calls from the pages' scripts, shared by accounts/passkeys.js, payments/approval.js,
// payments/passkey_owner.js and recovery/recovery.js (the one copy of these helpers):
// - csrfToken(): Django's CSRF token, from the page's csrfmiddlewaretoken input, else the csrftoken cookie.
// - request(url, method, body): fetch with the session cookie and the CSRF header; `body` (any JSON value) is
//   sent as JSON, `undefined` sends none. Resolves to { ok, status, json } (json {} when the body is not JSON);
//   rejects only when the network fails.
// - post(url, body): request(url, "POST", body || {}).
// - problem(json): the sentence for people in an error answer (problem details' detail, RFC 9457), with a
//   plain fallback.
// - messageBox(selector): a function that shows its text in every element matching selector (hidden when empty).
// Loaded before those scripts (all `defer`, so in document order). No inline script (CSP).
(() => {
  "use strict";

  const fallback = "That did not work. Please try again.";

  const csrfToken = () => {
    const input = document.querySelector("input[name=csrfmiddlewaretoken]");
    if (input) return input.value;
    const match = document.cookie.match(/(?:^|; )csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  };
  const request = async (url, method, body) => {
    const response = await fetch(url, {
      method, credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    let json = {};
    try { json = await response.json(); } catch (e) { /* empty body */ }
    return { ok: response.ok, status: response.status, json };
  };
  const post = (url, body) => request(url, "POST", body || {});
  const problem = (json) => (json && (json.detail || json.message || json.title)) || fallback;
  const messageBox = (selector) => (text) => {
    document.querySelectorAll(selector).forEach((box) => {
      box.textContent = text;
      box.hidden = !text;
    });
  };

  window.NumpayApi = Object.freeze({ csrfToken, request, post, problem, messageBox });
})();
