// Progressive enhancement only: every form works without this file.
"use strict";

// Upload forms (data-upload): send with XHR to show a progress bar, then follow the redirect.
function enhanceUpload(form) {
  const bar = form.querySelector("progress");
  const status = form.querySelector("[data-status]");
  form.addEventListener("submit", (event) => {
    const input = form.querySelector("input[type=file]");
    if (!input || !input.files.length || !window.XMLHttpRequest) return;
    event.preventDefault();
    const xhr = new XMLHttpRequest();
    xhr.open("POST", form.action);
    xhr.setRequestHeader("X-Requested-With", "XMLHttpRequest");
    xhr.upload.addEventListener("progress", (e) => {
      if (e.lengthComputable && bar) { bar.max = e.total; bar.value = e.loaded; }
      if (status) status.textContent = e.lengthComputable ? Math.round(100 * e.loaded / e.total) + "%" : "uploading…";
    });
    xhr.addEventListener("load", () => {
      if (xhr.status >= 200 && xhr.status < 400) {
        window.location.href = xhr.responseURL || form.dataset.done || window.location.href;
      } else if (status) {
        status.textContent = "failed: " + (xhr.responseText || xhr.status).toString().slice(0, 200);
      }
    });
    xhr.addEventListener("error", () => { if (status) status.textContent = "failed: network error"; });
    if (bar) { bar.hidden = false; bar.value = 0; }
    xhr.send(new FormData(form));
  });
}

// Progress pages (data-poll=URL): poll a JSON status and update a bar until done.
function enhancePoll(el) {
  const url = el.dataset.poll;
  const bar = el.querySelector("progress");
  const status = el.querySelector("[data-status]");
  async function tick() {
    try {
      const r = await fetch(url, { headers: { Accept: "application/json" } });
      const s = await r.json();
      if (bar && s.total) { bar.max = s.total; bar.value = s.done || 0; }
      if (status) status.textContent = s.message || s.state || "";
      if (s.state === "done" || s.state === "failed") {
        if (s.redirect) window.location.href = s.redirect; else window.location.reload();
        return;
      }
    } catch (e) { if (status) status.textContent = "waiting…"; }
    setTimeout(tick, 500);
  }
  tick();
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("form[data-upload]").forEach(enhanceUpload);
  document.querySelectorAll("[data-poll]").forEach(enhancePoll);
});

// Compose form (data-compose): choosing a step's effect shows its parameters and defaults
// as the placeholder of that step's parameters field.
function enhanceCompose(form) {
  form.querySelectorAll("select[data-effect-select]").forEach((select) => {
    select.addEventListener("change", () => {
      const row = select.closest("[data-step]");
      const field = row && row.querySelector("input[data-effect-params]");
      const option = select.selectedOptions[0];
      if (!field) return;
      const defaults = option ? option.dataset.defaults || "" : "";
      field.placeholder = select.value ? defaults || "no parameters" : "defaults";
    });
  });
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("form[data-compose]").forEach(enhanceCompose);
});
