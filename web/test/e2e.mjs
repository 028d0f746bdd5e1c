// End-to-end test of the browser demo (run by .ci/run after `bash web/demo.sh --build-only`):
// serve web/ on 127.0.0.1, drive Debian's chromium headless with WebGPU through
// playwright-core, generate greedy tokens for a fixed prompt in the page, screenshot the
// page, then run the native engine (examples/generate) with the same prompt and the same
// kernel variant the page chose, and require identical token ids.
//
//   node web/test/e2e.mjs [--tokens N] [--kv SCHEME] [--screenshot FILE] [--native BIN]
// Env: AURA_MODEL (the GGUF), CHROMIUM (default /usr/bin/chromium).
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { serve, modelPath } from "../serve.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, "..", "..");
const PROMPT = "Write a short story about a dragon who learns to read.";

function arg(name, def) {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : def;
}
if (process.argv.includes("--help")) {
  console.log(fs.readFileSync(fileURLToPath(import.meta.url), "utf8").split("\n").slice(0, 8).join("\n"));
  process.exit(0);
}
const tokens = Number(arg("--tokens", "32"));
const kv = arg("--kv", "f16");
const shot = path.resolve(arg("--screenshot", path.join(repo, "web", "test-results", "demo.png")));
const native = arg("--native", path.join(repo, "target", "release", "examples", "generate"));
const model = modelPath();

function fail(msg) {
  console.error(`FAIL: ${msg}`);
  process.exit(1);
}

if (!fs.existsSync(native)) fail(`native generate binary not found at ${native} (cargo build --release --example generate)`);
const exe = process.env.CHROMIUM || "/usr/bin/chromium";
if (!fs.existsSync(exe)) fail(`${exe} not found: apt-get install chromium`);

const { server, url } = await serve({ port: 0, model, quiet: true });
const browser = await chromium.launch({
  executablePath: exe,
  headless: true,
  args: [
    "--enable-unsafe-webgpu",
    "--no-sandbox",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
  ],
});
let page;
let result;
try {
  page = await browser.newPage({ viewport: { width: 900, height: 720 } });
  const console_ = [];
  page.on("console", (m) => console_.push(`[${m.type()}] ${m.text()}`));
  page.on("pageerror", (e) => console_.push(`[pageerror] ${e.message}`));
  const q = new URLSearchParams({ prompt: PROMPT, max_tokens: String(tokens), greedy: "1", ignore_eos: "1", kv, autorun: "1" });
  const t0 = Date.now();
  await page.goto(`${url}?${q}`);
  let last = "";
  for (;;) {
    const s = await page.evaluate(() => ({ state: window.aura?.state, error: window.aura?.error, n: document.querySelector(".turn.assistant span")?.textContent?.length ?? 0, progress: document.getElementById("progress-text")?.textContent }));
    const line = `${s.state} ${s.progress} reply chars ${s.n}`;
    if (line !== last) {
      console.log(`[${((Date.now() - t0) / 1000).toFixed(0)} s] ${line}`);
      last = line;
    }
    if (s.state === "done" || s.state === "error") break;
    if (Date.now() - t0 > 20 * 60 * 1000) {
      await page.screenshot({ path: shot });
      fail(`timed out after 20 min in state ${s.state}; console:\n${console_.join("\n")}`);
    }
    await new Promise((r) => setTimeout(r, 2000));
  }
  fs.mkdirSync(path.dirname(shot), { recursive: true });
  await page.screenshot({ path: shot, fullPage: true });
  console.log(`screenshot: ${shot}`);
  result = await page.evaluate(() => window.aura);
  if (result.state !== "done") fail(`page error: ${result.error}\nconsole:\n${console_.join("\n")}`);
} finally {
  await browser.close();
  server.close();
}

console.log(`adapter: ${result.adapter}`);
console.log(`variant: f16=${result.variant.f16} subgroups=${result.variant.subgroups}`);
console.log(`browser ids (${result.result.ids.length}): ${JSON.stringify(result.result.ids)}`);
console.log(`browser text: ${JSON.stringify(result.result.text)}`);
console.log(`browser decode: ${((result.result.ids.length - 1) / result.result.decode_s).toFixed(2)} tok/s`);
if (result.result.ids.length !== tokens) fail(`the page generated ${result.result.ids.length} tokens, expected ${tokens}`);

// The native engine, same prompt, same kernel variant (f16/subgroups) as the page, and the
// page's split-K merge (a dispatch of its own: the engine fuses it on Vulkan only).
const onoff = (b) => (b ? "on" : "off");
const nativeArgs = [
  "--model", model, "--prompt", PROMPT, "--greedy", "--max-tokens", String(tokens), "--ignore-eos", "--print-ids",
  "--kv", kv, "--f16", onoff(result.variant.f16), "--subgroups", onoff(result.variant.subgroups),
  "--fused-merge", "off",
];
if (process.env.AURA_NATIVE_BACKEND) nativeArgs.push("--backend", process.env.AURA_NATIVE_BACKEND);
console.log(`native: ${native} ${nativeArgs.map((a) => JSON.stringify(a)).join(" ")}`);
const r = spawnSync(native, nativeArgs, { encoding: "utf8" });
if (r.status !== 0) fail(`native generate failed (${r.status}):\n${r.stderr}`);
const m = r.stdout.match(/ids: \[([0-9, ]*)\]/);
if (!m) fail(`no ids in native output:\n${r.stdout}`);
const nativeIds = m[1].split(",").map((s) => Number(s.trim()));
console.log(`native ids (${nativeIds.length}): ${JSON.stringify(nativeIds)}`);
process.stderr.write(r.stderr);
const same = nativeIds.length === result.result.ids.length && nativeIds.every((v, i) => v === result.result.ids[i]);
if (!same) {
  const i = nativeIds.findIndex((v, j) => v !== result.result.ids[j]);
  fail(`browser and native greedy tokens differ at index ${i}`);
}
console.log(`PASS: ${tokens} greedy tokens in the browser (WebGPU) equal the native engine's`);
