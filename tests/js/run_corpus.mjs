// Runs dispatcher requests inside workerd (via miniflare) and writes the actual responses.
//
//   node tests/js/run_corpus.mjs INPUT.json OUTPUT.json
//
// INPUT (written by tests/contract/test_dispatcher_js.py from tests/contract/conformance/cases.yaml):
//   {"compatibility_date": "YYYY-MM-DD",
//    "setups": [{"environment", "platform_name", "route_table": <any JSON>,
//                "workers": {alias: <behaviour config>},
//                "analytics": null | "record" | "throw",
//                "requests": [{"name", "method", "target", "headers": [[name, value], ...],
//                              "body_b64", "chunked"}]}]}
// OUTPUT: [{"name", "status", "headers": {lowercased: value}, "body", "elapsed_ms", "error"?,
//           "logs": [workerd output lines about this request's id],
//           "data_points": [points written to ANALYTICS] (setups with analytics only)}]
//         in input order.
//
// Everything runs in ONE miniflare (one workerd process): each setup gets its own dispatcher
// Worker, its own DISPATCHER shim and service bindings to shared behaviour workers. Starting
// workerd once instead of once per case keeps the whole corpus to a few seconds.
//
// Requests go over a real socket straight to each dispatcher (`unsafeDirectSockets`), not through
// `mf.dispatchFetch`: miniflare's entry worker re-parses the URL with `new URL()`, which would
// resolve "%2e%2e" segments and turn "\" into "/" before the dispatcher could refuse them.
// workerd's own HTTP server hands the target through as sent, except that it resolves literal
// "." / ".." segments itself and refuses absolute-form targets before any Worker runs; the
// corpus marks those cases `only: [python]`.
import { Miniflare, Log, LogLevel } from "miniflare";
import http from "node:http";
import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, "..", "..");
const DISPATCHER_JS = path.join(repoRoot, "code24ctl", "dispatch", "dispatcher.js");
const SHIM_JS = path.join(here, "shim.mjs");
const BEHAVIOUR_JS = path.join(here, "behaviour.mjs");
const REQUEST_TIMEOUT_MS = 20000;

function esModule(file) {
  return [{ type: "ESModule", path: file }];
}

function buildWorkers(input) {
  const compatibilityDate = input.compatibility_date;
  const dispatchers = [];
  const shims = [];
  const users = new Map(); // behaviour JSON -> worker name; identical behaviours share a worker

  input.setups.forEach((setup, i) => {
    const aliases = {};
    const serviceBindings = {};
    const overLimit = {}; // alias -> the message its fetch() throws (null: the shim's default)
    Object.entries(setup.workers).forEach(([alias, behaviour], j) => {
      // The shim itself throws for a worker over its limit: no user worker behind it.
      if (behaviour.behaviour === "over_limit") {
        overLimit[alias] = behaviour.message ?? null;
        return;
      }
      const key = JSON.stringify(behaviour);
      if (!users.has(key)) users.set(key, { name: `user-${users.size}`, behaviour });
      const binding = `WORKER_${j}`;
      aliases[alias] = binding;
      serviceBindings[binding] = users.get(key).name;
    });
    dispatchers.push({
      name: `dispatcher-${i}`,
      modules: esModule(DISPATCHER_JS),
      modulesRoot: repoRoot,
      compatibilityDate,
      bindings: {
        ROUTE_TABLE: setup.route_table,
        ENVIRONMENT: setup.environment,
        PLATFORM_NAME: setup.platform_name,
        // The version metadata binding as `serve --runtime workerd` provides it locally.
        CF_VERSION_METADATA: { id: "local", tag: "", timestamp: "1970-01-01T00:00:00.000Z" },
      },
      wrappedBindings: {
        DISPATCHER: `shim-${i}`,
        // An Analytics Engine dataset stand-in, only for setups that ask for one.
        ...(setup.analytics
          ? {
              ANALYTICS: {
                scriptName: `shim-${i}`,
                entrypoint: "analyticsDataset",
                bindings: { MODE: setup.analytics, SETUP: i },
              },
            }
          : {}),
      },
      unsafeDirectSockets: [{ host: "127.0.0.1", port: 0 }],
    });
    // A wrapped-binding worker may set no compatibility date or flags of its own, and must not
    // be the first worker: the dispatchers come first.
    shims.push({
      name: `shim-${i}`,
      modules: esModule(SHIM_JS),
      modulesRoot: repoRoot,
      bindings: { ALIASES: aliases, OVER_LIMIT: overLimit },
      serviceBindings,
    });
  });
  const userWorkers = [...users.values()].map(({ name, behaviour }) => ({
    name,
    modules: esModule(BEHAVIOUR_JS),
    modulesRoot: repoRoot,
    compatibilityDate,
    bindings: { BEHAVIOUR: behaviour },
  }));
  return [...dispatchers, ...shims, ...userWorkers, FLUSH_WORKER];
}

function send(url, req) {
  const body = Buffer.from(req.body_b64 ?? "", "base64");
  const headers = {};
  for (const [name, value] of req.headers) headers[name] = value;
  // Content-Length is the harness's job unless the case sets one itself.
  const hasLength = Object.keys(headers).some((name) => name.toLowerCase() === "content-length");
  const hasBody = body.length > 0 || !["GET", "HEAD"].includes(req.method);
  if (hasBody && !req.chunked && !hasLength) headers["Content-Length"] = String(body.length);
  if (req.chunked) headers["Transfer-Encoding"] = "chunked";
  const started = performance.now();
  return new Promise((resolve) => {
    const done = (result) =>
      resolve({ name: req.name, ...result, elapsed_ms: Math.round(performance.now() - started) });
    const r = http.request(
      {
        host: url.hostname,
        port: url.port,
        method: req.method,
        path: req.target, // sent byte for byte: node does not normalise the request target
        headers,
        agent: false,
        timeout: REQUEST_TIMEOUT_MS,
      },
      (res) => {
        const chunks = [];
        res.on("data", (c) => chunks.push(c));
        res.on("end", () => {
          const out = {};
          for (let k = 0; k < res.rawHeaders.length; k += 2) {
            const name = res.rawHeaders[k].toLowerCase();
            const value = res.rawHeaders[k + 1];
            out[name] = name in out ? `${out[name]}, ${value}` : value;
          }
          res.socket?.destroy();
          done({
            status: res.statusCode,
            headers: out,
            body: Buffer.concat(chunks).toString("utf8"),
          });
        });
        res.on("error", (e) => done({ status: 0, headers: {}, body: "", error: String(e) }));
      },
    );
    r.on("timeout", () => r.destroy(new Error(`no answer in ${REQUEST_TIMEOUT_MS} ms`)));
    r.on("error", (e) => done({ status: 0, headers: {}, body: "", error: String(e) }));
    try {
      writeBody(r, body, req.chunked);
    } catch (e) {
      r.destroy();
      done({ status: 0, headers: {}, body: "", error: String(e) });
    }
  });
}

function writeBody(r, body, chunked) {
  {
    if (chunked) {
      // Several chunks, so the dispatcher really sees a stream with no declared length.
      const piece = 64 * 1024;
      for (let k = 0; k < body.length; k += piece) r.write(body.subarray(k, k + piece));
      r.end();
    } else {
      r.end(body.length > 0 ? body : undefined);
    }
  }
}

const DATA_POINT_MARKER = "CODE24_TEST_DATA_POINT ";

// workerd's output pipes do not end when miniflare is disposed, so the harness knows it has read
// everything the workers printed by asking this worker to print a marker on both pipes last:
// each pipe keeps its order, so once the marker arrives every earlier line has too.
const FLUSH_MARKER = "CODE24_HARNESS_FLUSHED";
const FLUSH_WORKER = {
  name: "harness-flush",
  modules: true,
  script: `export default { fetch() {
    console.log("${FLUSH_MARKER}"); console.error("${FLUSH_MARKER}");
    return new Response("flushed");
  } };`,
  unsafeDirectSockets: [{ host: "127.0.0.1", port: 0 }],
};

// Collects workerd's output lines (console.* of every worker), still echoing them to stderr.
// Resolves once the flush marker has been read from this stream.
function collectLines(stream, lines) {
  let rest = "";
  let flushed;
  const done = new Promise((resolve) => {
    flushed = resolve;
  });
  stream.setEncoding("utf8");
  stream.on("data", (chunk) => {
    const parts = (rest + chunk).split("\n");
    rest = parts.pop();
    for (const line of parts) {
      if (line.includes(FLUSH_MARKER)) {
        flushed();
        continue;
      }
      process.stderr.write(line + "\n");
      lines.push(line);
    }
  });
  return done;
}

// Which request a log line is about: the structured request line names its request_id, the
// dispatcher's error lines say "(request ID)".
function requestIdOf(line) {
  const start = line.indexOf("{");
  if (start >= 0) {
    try {
      const fields = JSON.parse(line.slice(start));
      if (fields?.code24 === "request") return String(fields.request_id);
    } catch {
      // not JSON: fall through
    }
  }
  const match = /\(request ([^)]*)\)/.exec(line);
  return match ? match[1] : null;
}

function attachOutput(input, results, lines) {
  const points = new Map(); // setup index -> data points, in write order
  const logs = new Map(); // request id -> lines
  for (const line of lines) {
    const at = line.indexOf(DATA_POINT_MARKER);
    if (at >= 0) {
      const { setup, point } = JSON.parse(line.slice(at + DATA_POINT_MARKER.length));
      if (!points.has(setup)) points.set(setup, []);
      points.get(setup).push(point);
      continue;
    }
    const id = requestIdOf(line);
    if (id === null) continue;
    if (!logs.has(id)) logs.set(id, []);
    logs.get(id).push(line);
  }
  let k = 0;
  input.setups.forEach((setup, i) => {
    for (let j = 0; j < setup.requests.length; j++, k++) {
      const result = results[k];
      result.logs = logs.get(result.headers?.["x-code24-request-id"]) ?? [];
      if (setup.analytics) result.data_points = points.get(i) ?? [];
    }
  });
}

async function main() {
  const [inputPath, outputPath] = process.argv.slice(2);
  if (!inputPath || !outputPath) {
    console.error("usage: node run_corpus.mjs INPUT.json OUTPUT.json");
    process.exit(2);
  }
  const input = JSON.parse(await readFile(inputPath, "utf8"));
  const lines = [];
  const outputDone = [];
  const mf = new Miniflare({
    workers: buildWorkers(input),
    log: new Log(LogLevel.WARN),
    // No Request.cf download from Cloudflare: tests talk to 127.0.0.1 only.
    cf: false,
    // workerd's own stdout/stderr (console.* in workers) go to stderr, never mixed with results,
    // and are collected: data points and log lines are matched to their requests at the end.
    handleRuntimeStdio(stdout, stderr) {
      outputDone.push(collectLines(stdout, lines), collectLines(stderr, lines));
    },
  });
  const results = [];
  try {
    await mf.ready;
    for (const [i, setup] of input.setups.entries()) {
      const url = await mf.unsafeGetDirectURL(`dispatcher-${i}`);
      // One request at a time: timeout cases need the machine's attention to keep their margins.
      for (const req of setup.requests) results.push(await send(url, req));
    }
    const flush = await mf.unsafeGetDirectURL("harness-flush");
    await send(flush, { name: "flush", method: "GET", target: "/", headers: [] });
    await Promise.all(outputDone);
  } finally {
    await mf.dispose();
  }
  attachOutput(input, results, lines);
  await writeFile(outputPath, JSON.stringify(results));
}

await main();
