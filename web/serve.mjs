// Serve the demo on 127.0.0.1: web/ (index.html, main.js, pkg/) plus the model at
// /model.gguf, read from $AURA_MODEL or the engine's cache (~/.cache/aura).
//   node web/serve.mjs [--port N]        (default port 8080; 0 picks a free one)
import http from "node:http";
import fs from "node:fs";
import path from "node:path";
import os from "node:os";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf";
const TYPES = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".wasm": "application/wasm",
  ".json": "application/json",
  ".png": "image/png",
  ".gguf": "application/octet-stream",
};

export function modelPath() {
  if (process.env.AURA_MODEL) return process.env.AURA_MODEL;
  const cache =
    process.env.AURA_CACHE ||
    (process.env.XDG_CACHE_HOME ? path.join(process.env.XDG_CACHE_HOME, "aura") : path.join(os.homedir(), ".cache", "aura"));
  return path.join(cache, MODEL_FILE);
}

export function serve({ port = 8080, root = here, model = modelPath(), quiet = false } = {}) {
  if (!fs.existsSync(path.join(root, "pkg", "aura_web.js"))) {
    throw new Error(`${root}/pkg is missing: build the wasm first (bash web/demo.sh --build-only)`);
  }
  if (!fs.existsSync(model)) {
    throw new Error(
      `model not found at ${model}: set AURA_MODEL, or fetch it once with \`cargo run --release --example chat\``,
    );
  }
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, "http://127.0.0.1");
    let file;
    if (url.pathname === "/model.gguf") file = model;
    else {
      const rel = path.normalize(decodeURIComponent(url.pathname)).replace(/^(\.\.[/\\])+/, "");
      file = path.join(root, rel === "/" ? "index.html" : rel);
      if (!file.startsWith(root + path.sep)) file = null;
    }
    let st = null;
    try {
      st = file && fs.statSync(file);
    } catch {}
    if (!st || !st.isFile()) {
      res.writeHead(404, { "content-type": "text/plain" });
      res.end("not found\n");
      if (!quiet) console.log(`404 ${url.pathname}`);
      return;
    }
    res.writeHead(200, {
      "content-type": TYPES[path.extname(file)] || "application/octet-stream",
      "content-length": st.size,
      "cache-control": "no-cache",
    });
    fs.createReadStream(file).pipe(res);
  });
  return new Promise((resolve, reject) => {
    server.on("error", reject);
    server.listen(port, "127.0.0.1", () => {
      const url = `http://127.0.0.1:${server.address().port}/`;
      if (!quiet) console.log(`aura demo at ${url} (model: ${model})`);
      resolve({ server, url });
    });
  });
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  if (args.includes("--help") || args.includes("-h")) {
    console.log("usage: node web/serve.mjs [--port N]\nServes web/ and the model (AURA_MODEL or ~/.cache/aura) on 127.0.0.1.");
    process.exit(0);
  }
  const i = args.indexOf("--port");
  const port = i >= 0 ? Number(args[i + 1]) : 8080;
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error(`--port takes a port number, not \`${args[i + 1]}\``);
    process.exit(2);
  }
  serve({ port }).catch((e) => {
    console.error(`error: ${e.message}`);
    process.exit(1);
  });
}
