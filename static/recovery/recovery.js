// Guardian recovery's passkey steps against /api/v1/recovery/ (no inline script: CSP). The server checks
// everything (recovery/passkeys.py); this only carries bytes.
// - [data-recovery-passkey]: options (data-options-url, GET or POST data-options-body; or the JSON in the
//   element data-options-element; data-options-key picks a field) -> navigator.credentials.get/create
//   (data-mode) -> POST data-submit-url {credential, ...data-submit-extra} -> go to data-done-url.
// - [data-recovery-invite] form: the owner's passkey over ("invite", email), then the invitation.
(() => {
  "use strict";

  const { creationOptions, requestOptions, credentialJSON } = window.NumpayWebAuthn;
  const { request, problem, messageBox } = window.NumpayApi;
  // the answer's JSON; an error answer throws its sentence (shown by report)
  const api = async (url, method, body) => {
    const { ok, json } = await request(url, method, body);
    if (!ok) throw new Error(problem(json));
    return json;
  };
  const safePath = (path) => (path && path.startsWith("/") && !path.startsWith("//") ? path : "/");
  const showError = messageBox("[data-recovery-error]");
  const report = (error) => showError(error && error.name === "NotAllowedError" ? "No passkey was used." : (error.message || String(error)));

  const passkey = async (mode, options) => {
    const publicKey = options.publicKey || options;
    const credential = mode === "create"
      ? await navigator.credentials.create({ publicKey: creationOptions(publicKey) })
      : await navigator.credentials.get({ publicKey: requestOptions(publicKey) });
    return credentialJSON(credential);
  };

  document.querySelectorAll("[data-recovery-passkey]").forEach((button) => {
    button.addEventListener("click", async () => {
      showError("");
      try {
        const d = button.dataset;
        let options;
        if (d.optionsElement) options = JSON.parse(document.getElementById(d.optionsElement).textContent);
        else if (d.optionsBody) options = await api(d.optionsUrl, "POST", JSON.parse(d.optionsBody));
        else options = await api(d.optionsUrl, "GET");
        if (d.optionsKey) options = options[d.optionsKey];
        // null options: no passkey needed (e.g. a withdrawal the wallet does not count): post without one
        const credential = options ? await passkey(d.mode, options) : undefined;
        await api(d.submitUrl, "POST", { ...(d.submitExtra ? JSON.parse(d.submitExtra) : {}),
                                         ...(credential ? { credential } : {}) });
        window.location.assign(safePath(d.doneUrl));
      } catch (error) { report(error); }
    });
  });

  const invite = document.querySelector("[data-recovery-invite]");
  if (invite) {
    invite.addEventListener("submit", async (event) => {
      event.preventDefault();
      showError("");
      try {
        const email = invite.querySelector("[name=email]").value.trim().toLowerCase();
        const options = await api("/api/v1/recovery/owner-challenge", "POST", { action: "invite", subject: email });
        const credential = await passkey("get", options);
        await api("/api/v1/recovery/guardians", "POST", { email, credential });
        window.location.reload();
      } catch (error) { report(error); }
    });
  }
})();
