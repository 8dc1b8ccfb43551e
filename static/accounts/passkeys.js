// Passkeys (WebAuthn) against allauth's headless browser API (the same session as the pages).
// - [data-passkey-add] form: register a passkey (creation options -> navigator.credentials.create -> POST, or
//   data-register-method, e.g. PUT for the passkey sign-up's last step).
// - [data-passkey-login]: sign in with a passkey, from the button (modal) and from the login field's
//   autofill (conditional mediation: the browser offers saved passkeys in the field's suggestions).
// No inline script (CSP); the server checks everything (accounts/passkeys.py), this only carries bytes.
(() => {
  "use strict";

  const { creationOptions, requestOptions, credentialJSON } = window.NumpayWebAuthn;

  const { request: api, messageBox } = window.NumpayApi;
  // Only same-site paths: never follow ?next= to another site.
  const safePath = (path) => (path && path.startsWith("/") && !path.startsWith("//") ? path : "/");

  const showError = messageBox("[data-passkey-error]");
  // allauth's headless error shape ({errors: [{message}]}), not problem details
  const problem = (json) => {
    const errors = (json && json.errors) || [];
    return errors.length ? errors.map((e) => e.message).join(" ") : "That did not work. Please try again.";
  };

  // --- registration ---
  const addForm = document.querySelector("[data-passkey-add]");
  if (addForm) {
    addForm.addEventListener("submit", async (event) => {
      event.preventDefault();
      showError("");
      try {
        const options = await api(addForm.dataset.optionsUrl, "GET");
        if (!options.ok) { showError(problem(options.json)); return; }
        const credential = await navigator.credentials.create({
          publicKey: creationOptions(options.json.data.creation_options.publicKey),
        });
        const name = addForm.querySelector("[name=name]").value;
        const method = addForm.dataset.registerMethod || "POST";  // PUT: allauth's passkey sign-up step
        const saved = await api(addForm.dataset.registerUrl, method, { name, credential: credentialJSON(credential) });
        if (!saved.ok) { showError(problem(saved.json)); return; }
        window.location.assign(safePath(addForm.dataset.doneUrl));
      } catch (error) {
        showError(error && error.name === "NotAllowedError" ? "The passkey was not created." : String(error));
      }
    });
  }

  // --- sign-in ---
  // Two requests can start here: the autofill one (conditional mediation) when the page loads, and a modal
  // one from the button. allauth keeps one pending challenge per session, so they must never overlap on the
  // server: the button aborts the autofill request and waits until it has ended (its options fetched, its
  // navigator.credentials.get settled) before it fetches its own challenge. Only one credential is ever
  // posted: the first request to get one claims `posting`; any other result is dropped.
  const login = document.querySelector("[data-passkey-login]");
  if (login && window.PublicKeyCredential) {
    let current = null;     // the latest request: { controller, run, ended } (`ended` settles when it is over)
    let posting = false;    // a credential is being posted (or was, and the page is leaving)
    const signIn = (mediation) => {
      const previous = current;
      const controller = new AbortController();
      const stale = () => controller.signal.aborted || posting;
      const run = (async () => {
        if (previous) {
          previous.controller.abort();
          await previous.ended;
        }
        if (stale()) return;
        const options = await api(login.dataset.optionsUrl, "GET");
        if (stale()) return;
        if (!options.ok) throw new Error(problem(options.json));
        const credential = await navigator.credentials.get({
          publicKey: requestOptions(options.json.data.request_options.publicKey),
          mediation, signal: controller.signal,
        });
        if (stale() || !credential) return;
        posting = true;
        const result = await api(login.dataset.loginUrl, "POST", { credential: credentialJSON(credential) });
        if (!result.ok) { posting = false; throw new Error(problem(result.json)); }
        window.location.assign(safePath(login.dataset.doneUrl));
      })();
      current = { controller, run, ended: run.catch(() => {}) };
      return run;
    };
    const report = (error) => {
      if (error && error.name === "AbortError") return;  // replaced by another request
      showError(error && error.name === "NotAllowedError" ? "No passkey was used." : (error.message || String(error)));
    };
    let autofill = false;
    const startAutofill = () => { if (autofill) signIn("conditional").catch(report); };
    login.querySelector("button").addEventListener("click", () => {
      showError("");
      // after a modal request ends without signing in (and nothing replaced it), offer the passkeys in the
      // field's suggestions again
      const run = signIn("optional");
      run.catch(report).then(() => { if (!posting && current && current.run === run) startAutofill(); });
    });
    // Autofill: the login field offers this site's passkeys next to saved addresses.
    const field = document.querySelector("input[name=login]");
    if (field && PublicKeyCredential.isConditionalMediationAvailable) {
      PublicKeyCredential.isConditionalMediationAvailable().then((available) => {
        if (!available) return;
        autofill = true;
        field.setAttribute("autocomplete", "username webauthn");
        if (!current) startAutofill();  // else the button was quicker: autofill restarts when its request ends
      });
    }
  }
})();
