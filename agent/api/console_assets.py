"""The console's script and style, served by the agent itself (no CDN, works offline)."""
from __future__ import annotations

CONSOLE_JS = r"""
"use strict";
// Every call carries X-Console: a page on another site cannot add it without the agent's consent.
const HEADERS = {"X-Console": "1"};
let syncStart = null;

async function call(method, path) {
  const response = await fetch(path, {method, headers: HEADERS});
  const body = await response.json();
  if (!response.ok) throw new Error(body.message || response.status);
  return body;
}

function unconfirmed(state) { return state.sync.pending + state.sync.delivered; }

function show(state) {
  for (const key of ["pending", "delivered", "confirmed"]) {
    document.getElementById("sync-" + key).textContent = state.sync[key];
  }
  document.getElementById("broker").textContent = state.broker;
  const health = document.getElementById("health");
  health.textContent = state.status_es;
  health.className = "status-" + state.status;
  if (syncStart !== null) {
    const left = unconfirmed(state);
    const done = syncStart === 0 ? 100 : Math.round(100 * (syncStart - Math.min(left, syncStart)) / syncStart);
    const bar = document.getElementById("sync-progress");
    bar.value = done;
    document.getElementById("sync-text").textContent = done + "% · " + left + " por confirmar";
    if (left === 0) { syncStart = null; document.getElementById("sync-text").textContent = "100% · sincronizado"; }
  }
}

async function refresh() {
  try { show(await call("GET", "/console/api/state")); } catch (e) { /* the next refresh tries again */ }
}

async function syncNow(button) {
  button.disabled = true;
  try {
    const answer = await call("POST", "/console/api/sync");
    document.getElementById("sync-text").textContent = answer.message;
    syncStart = answer.requested ? answer.unconfirmed : null;
    document.getElementById("sync-progress").value = answer.unconfirmed === 0 ? 100 : 0;
    if (answer.requested) for (let i = 0; i < 120 && syncStart !== null; i++) {
      await refresh();
      await new Promise(r => setTimeout(r, 500));
    }
  } catch (e) {
    document.getElementById("sync-text").textContent = "error: " + e.message;
  } finally { button.disabled = false; }
}

async function testDevice(button) {
  const device = button.dataset.device;
  const out = document.getElementById("result-" + device);
  button.disabled = true;
  out.textContent = "probando…";
  out.className = "result";
  try {
    const result = await call("POST", "/console/api/devices/" + device + "/test");
    out.textContent = result.message;
    out.className = "result " + (result.ok ? "ok" : "bad");
  } catch (e) {
    out.textContent = "error: " + e.message;
    out.className = "result bad";
  } finally { button.disabled = false; refresh(); }
}

document.addEventListener("DOMContentLoaded", () => {
  for (const button of document.querySelectorAll("button.test")) button.addEventListener("click", () => testDevice(button));
  document.getElementById("sync-now").addEventListener("click", e => syncNow(e.target));
  setInterval(refresh, 5000);
  document.body.dataset.ready = "1";
});
"""

CONSOLE_CSS = """
body { font-family: system-ui, sans-serif; margin: 0 auto; max-width: 60rem; padding: 1rem; color: #222; }
header { border-bottom: 2px solid #ddd; margin-bottom: 1rem; }
h1 { margin: 0.2rem 0; } h2 { font-size: 1.1rem; margin-top: 1.5rem; }
table { border-collapse: collapse; width: 100%; } td, th { padding: 0.35rem; border-bottom: 1px solid #eee; text-align: left; }
.status-ok { color: #17692b; font-weight: bold; } .status-degraded { color: #9a6700; font-weight: bold; }
.status-failing { color: #b42318; font-weight: bold; }
.up { color: #17692b; } .down { color: #b42318; font-weight: bold; } .unknown { color: #666; }
.result.ok { color: #17692b; } .result.bad { color: #b42318; }
progress { width: 16rem; vertical-align: middle; }
button { padding: 0.3rem 0.8rem; } code { background: #f4f4f4; padding: 0 0.2rem; }
.check-ok::before { content: "✔ "; color: #17692b; } .check-warning::before { content: "⚠ "; color: #9a6700; }
.check-failing::before { content: "✘ "; color: #b42318; }
.remedy { color: #555; font-size: 0.9rem; }
"""
