// End-to-end test of the browser demo (run by .ci/run after `bash web/demo.sh --build-only`):
// serve web/ on 127.0.0.1, drive Debian's chromium headless with WebGPU through
// playwright-core, generate greedy tokens for a fixed prompt in the page, screenshot the
// page, then run the native engine (examples/generate) with the same prompt and the same
// kernel variant the page chose, fed the page's tokens, and require each page token to be
// the native engine's greedy choice after the same prefix, or a near tie (see TIE below).
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
// page's split-K merge (a dispatch of its own: the engine fuses it on Vulkan only), fed the
// page's tokens (teacher-forced, --force-ids) and printing its best logit at each
// position (--print-top). Each page token must be the native engine's greedy choice after
// the same prefix, or a near tie there: within TIE logits of its best, at most MAX_TIES
// times. SwiftShader and lavapipe round differently (FMA contraction, exp), and an AURA
// cache quantizes: a value at a Lloyd-Max boundary can take the other index on the other
// device, which moves logits by more than rounding (measured: aura8v4, 24 tokens, one
// position where the native engine's two best were 0.048 apart and the page took the
// second). A wrong kernel moves logits by whole units at most positions.
const TIE = 0.1;
const MAX_TIES = Math.max(1, Math.floor(tokens / 12));
const onoff = (b) => (b ? "on" : "off");
const nativeArgs = [
  "--model", model, "--prompt", PROMPT, "--greedy", "--print-top", "1", "--force-ids", result.result.ids.join(","),
  "--kv", kv, "--f16", onoff(result.variant.f16), "--subgroups", onoff(result.variant.subgroups),
  "--fused-merge", "off",
];
if (process.env.AURA_NATIVE_BACKEND) nativeArgs.push("--backend", process.env.AURA_NATIVE_BACKEND);
console.log(`native: ${native} ${nativeArgs.map((a) => JSON.stringify(a)).join(" ")}`);
const r = spawnSync(native, nativeArgs, { encoding: "utf8" });
if (r.status !== 0) fail(`native generate failed (${r.status}):\n${r.stderr}`);
const tops = r.stderr.split("\n").filter((l) => l.startsWith("top: ")).map((l) => JSON.parse(l.slice(5)));
process.stderr.write(r.stderr.split("\n").filter((l) => !l.startsWith("top: ")).join("\n"));
if (tops.length !== tokens) fail(`the native engine printed ${tops.length} positions, expected ${tokens}:\n${r.stderr}`);
const nativeIds = tops.map((t) => t.top[0][0]);
console.log(`native greedy choice after each page prefix (${nativeIds.length}): ${JSON.stringify(nativeIds)}`);
let ties = 0;
for (const [i, t] of tops.entries()) {
  const id = result.result.ids[i];
  if (t.id !== id || t.pos !== i) fail(`native position ${i} was fed ${t.id} at ${t.pos}, expected ${id}`);
  const [best, bestLogit] = t.top[0];
  if (best === id) continue;
  const gap = bestLogit - t.logit;
  console.log(`position ${i}: page ${id} (native logit ${t.logit.toFixed(4)}), native best ${best} (${bestLogit.toFixed(4)}): gap ${gap.toFixed(4)}`);
  if (!(gap <= TIE)) fail(`at position ${i} the page's token ${id} is ${gap.toFixed(4)} logits below the native engine's best ${best} (near-tie tolerance ${TIE})`);
  ties += 1;
}
if (ties > MAX_TIES) fail(`${ties} near ties where the page and the native engine chose differently (at most ${MAX_TIES})`);
console.log(`PASS: ${tokens} greedy tokens in the browser (WebGPU) are the native engine's greedy choices${ties ? ` (${ties} near tie${ties > 1 ? "s" : ""} within ${TIE})` : ""}`);
