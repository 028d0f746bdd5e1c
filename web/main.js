// aura browser demo: fetch the GGUF with progress, open WebGPU through the wasm engine,
// stream replies token by token. Query parameters (all optional):
//   model=URL (default model.gguf), kv=f16|aura8v4|aura4v4|aura4v2, max_tokens=N,
//   greedy=1|0, ctx=N (KV capacity), f16=on|off, subgroups=on|off, prompt=TEXT,
//   autorun=1 (send `prompt` once loaded), ignore_eos=1 (always generate max_tokens).
import init, { Demo } from "./pkg/aura_web.js";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
// What tests read: state, the last reply's ids/text and timings.
const status = { state: "init", adapter: null, variant: null, result: null, error: null };
window.aura = status;

function setState(s) {
  status.state = s;
  $("state").dataset.state = s;
  $("state").textContent = s;
}

function showError(msg) {
  let text = String(msg && msg.message ? msg.message : msg);
  const why = demo && demo.lost();
  if (why) text += `\n(GPU device lost: ${why})`;
  status.error = text;
  $("error").hidden = false;
  $("error").textContent = text;
  setState("error");
  $("send").disabled = true;
}
window.addEventListener("error", (e) => showError(e.error || e.message));
window.addEventListener("unhandledrejection", (e) => showError(e.reason));

function fmtBytes(n) {
  if (n >= 1 << 30) return (n / (1 << 30)).toFixed(2) + " GiB";
  if (n >= 1 << 20) return (n / (1 << 20)).toFixed(1) + " MiB";
  if (n >= 1 << 10) return (n / (1 << 10)).toFixed(1) + " KiB";
  return n + " B";
}

async function download(url) {
  let resp;
  try {
    resp = await fetch(url);
  } catch (e) {
    throw new Error(`model fetch failed: ${url}: ${e.message || e}`);
  }
  if (!resp.ok) throw new Error(`model fetch failed: ${url}: HTTP ${resp.status} ${resp.statusText}`);
  const total = Number(resp.headers.get("content-length")) || 0;
  const reader = resp.body.getReader();
  const chunks = [];
  let got = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    got += value.length;
    $("progress").value = total ? got / total : 0;
    $("progress-text").textContent = total ? `${fmtBytes(got)} of ${fmtBytes(total)}` : fmtBytes(got);
  }
  if (total && got !== total) throw new Error(`model fetch failed: got ${got} of ${total} bytes`);
  const bytes = new Uint8Array(got);
  let off = 0;
  for (const c of chunks) {
    bytes.set(c, off);
    off += c.length;
  }
  $("progress").value = 1;
  return bytes;
}

let demo = null;
let lastKv = null;

function addTurn(role, text) {
  const div = document.createElement("div");
  div.className = `turn ${role}`;
  const body = document.createElement("span");
  body.textContent = text;
  div.appendChild(body);
  $("log").appendChild(div);
  return { div, body };
}

async function send(prompt) {
  const kv = $("kv").value;
  const maxTokens = Math.max(1, Number($("max-tokens").value) || 128);
  const greedy = $("greedy").checked;
  const ignoreEos = params.get("ignore_eos") === "1";
  const capacity = Number(params.get("ctx")) || 2048;
  $("send").disabled = true;
  setState("generating");
  addTurn("user", prompt);
  const turn = addTurn("assistant", "");
  const t0 = performance.now();
  const info = JSON.parse(await demo.start(prompt, kv, capacity, maxTokens, greedy, ignoreEos));
  const prefillMs = performance.now() - t0;
  lastKv = kv;
  const ids = [];
  let firstAt = null;
  let out;
  for (;;) {
    out = JSON.parse(await demo.next());
    if (out.id !== null) {
      ids.push(out.id);
      if (firstAt === null) firstAt = performance.now();
      turn.body.textContent += out.piece;
    }
    const n = ids.length;
    const decodeS = firstAt === null ? 0 : (performance.now() - firstAt) / 1000;
    const tps = n > 1 && decodeS > 0 ? ((n - 1) / decodeS).toFixed(1) : "—";
    $("stats").textContent =
      `decode: ${tps} tok/s · prefill: ${(info.prefilled / (prefillMs / 1000)).toFixed(1)} tok/s ` +
      `(${info.prefilled} tokens) · KV ${info.kv_scheme}: ${fmtBytes(info.kv_bytes_per_token)}/token, ` +
      `${fmtBytes(info.kv_bytes_per_token * (info.prompt_tokens + n))} used of ${fmtBytes(info.kv_bytes_total)}`;
    if (out.done) break;
    // Let the page paint between tokens.
    await new Promise((r) => setTimeout(r, 0));
  }
  turn.body.textContent = out.text;
  const decodeS = firstAt === null ? 0 : (performance.now() - firstAt) / 1000;
  const note = document.createElement("span");
  note.className = "note";
  note.textContent = `${ids.length} tokens · ${ids.length > 1 ? ((ids.length - 1) / decodeS).toFixed(1) : "—"} tok/s decode · KV ${info.kv_scheme}`;
  turn.div.appendChild(note);
  status.result = { prompt, ids: out.ids, text: out.text, kv, prefill: info, decode_s: decodeS };
  setState("done");
  $("send").disabled = false;
}

async function main() {
  if (!navigator.gpu) {
    throw new Error("This browser has no WebGPU (navigator.gpu is missing). Use a recent Chrome/Edge, or Chromium with --enable-unsafe-webgpu.");
  }
  setState("loading");
  await init();
  for (const [k, id] of [["kv", "kv"], ["max_tokens", "max-tokens"]]) if (params.has(k)) $(id).value = params.get(k);
  if (params.has("greedy")) $("greedy").checked = params.get("greedy") !== "0";
  if (params.has("prompt")) $("prompt").value = params.get("prompt");
  const modelUrl = params.get("model") || "model.gguf";
  const [d, bytes] = await Promise.all([
    Demo.create(params.get("f16") || "", params.get("subgroups") || ""),
    download(modelUrl),
  ]);
  demo = d;
  // wgpu leaves the adapter name empty on the web: describe it from WebGPU's own info.
  let webInfo = "";
  try {
    const a = await navigator.gpu.requestAdapter();
    const i = (a && a.info) || {};
    webInfo = [i.vendor, i.architecture, i.device, i.description].filter(Boolean).join(" / ");
  } catch {}
  status.adapter = `${webInfo || "WebGPU adapter"} — ${demo.adapter_info().replace(/^\s*\(BrowserWebGpu, \)\s*\|\s*/, "")}`;
  setInterval(() => {
    const why = demo.lost();
    if (why && status.state !== "error") showError(`GPU device lost (${why}); reload the page`);
  }, 1000);
  status.variant = JSON.parse(demo.variant_json());
  $("adapter").textContent = "adapter: WebGPU, " + status.adapter;
  $("variant").textContent =
    `kernels: ${status.variant.f16 ? "f16" : "f32"} arithmetic/KV, ` +
    `${status.variant.subgroups ? "subgroup" : "workgroup-memory (no subgroups)"} reductions · ` +
    `max storage binding ${fmtBytes(status.variant.max_storage_binding)}`;
  $("progress-text").textContent = "uploading weights…";
  await new Promise((r) => setTimeout(r, 0));
  const summary = demo.load_model(bytes);
  $("modelinfo").textContent = `model: ${modelUrl} (${fmtBytes(bytes.length)}): ${summary}`;
  $("progress-text").textContent = `loaded ${fmtBytes(bytes.length)}`;
  setState("ready");
  $("send").disabled = false;
  $("form").addEventListener("submit", (e) => {
    e.preventDefault();
    const p = $("prompt").value.trim();
    if (p) send(p).catch(showError);
  });
  $("prompt").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey) {
      e.preventDefault();
      $("form").requestSubmit();
    }
  });
  $("reset").addEventListener("click", () => {
    demo.reset();
    $("log").textContent = "";
    if (status.state !== "error") setState("ready");
  });
  $("kv").addEventListener("change", () => {
    if (lastKv !== null && $("kv").value !== lastKv) {
      demo.reset();
      addTurn("assistant", `(KV cache switched to ${$("kv").value}: new conversation)`);
    }
  });
  if (params.get("autorun") === "1") await send($("prompt").value.trim());
}

main().catch(showError);
