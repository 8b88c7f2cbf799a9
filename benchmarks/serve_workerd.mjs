// The JavaScript dispatcher inside workerd (via miniflare), for benchmarks/bench_serve.py.
//
//   node benchmarks/serve_workerd.mjs CONFIG.json
//
// CONFIG: {"route_table": {...}, "environment": "bench", "compatibility_date": "YYYY-MM-DD",
//          "upstreams": {alias: "127.0.0.1:PORT"}, "port": 0}
//
// Every alias of the dispatch namespace is an *external* service binding to the given address,
// so workerd forwards the dispatched request over HTTP to the same small JSON worker the other
// contenders (direct, nginx, serve) talk to. Requests reach the dispatcher on a direct socket
// (no miniflare entry worker in between). Prints one JSON line {"url": ...} on stdout when
// ready; stops on SIGTERM/SIGINT. Needs `npm ci --prefix tests/js` (miniflare, workerd).
import { createRequire } from "node:module";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, "..");
const require = createRequire(path.join(repoRoot, "tests", "js", "package.json"));
const { Miniflare, Log, LogLevel } = require("miniflare");

// Stand-in for the dispatch namespace binding: get(alias) returns that alias's service binding
// (lazy, like the real one: an unknown alias only fails at fetch()).
const NAMESPACE_SHIM = `
export default function makeNamespace(env) {
  return {
    get(name) {
      const binding = Object.hasOwn(env.ALIASES, name) ? env.ALIASES[name] : undefined;
      if (binding !== undefined) return env[binding];
      return { async fetch() { throw new Error("Worker not found."); } };
    },
  };
}
`;

async function main() {
  const [configPath] = process.argv.slice(2);
  if (!configPath) {
    console.error("usage: node benchmarks/serve_workerd.mjs CONFIG.json");
    process.exit(2);
  }
  const config = JSON.parse(await readFile(configPath, "utf8"));
  const aliases = {};
  const serviceBindings = {};
  Object.entries(config.upstreams).forEach(([alias, address], i) => {
    aliases[alias] = `WORKER_${i}`;
    serviceBindings[`WORKER_${i}`] = { external: { address, http: {} } };
  });
  const mf = new Miniflare({
    log: new Log(LogLevel.WARN),
    cf: false,
    workers: [
      {
        name: "dispatcher",
        modules: [{ type: "ESModule", path: path.join(repoRoot, "code24ctl", "dispatch", "dispatcher.js") }],
        modulesRoot: repoRoot,
        compatibilityDate: config.compatibility_date,
        bindings: {
          ROUTE_TABLE: config.route_table,
          ENVIRONMENT: config.environment,
          PLATFORM_NAME: "Code24",
        },
        wrappedBindings: { DISPATCHER: "namespace-shim" },
        unsafeDirectSockets: [{ host: "127.0.0.1", port: config.port ?? 0 }],
      },
      {
        // A wrapped-binding worker has no compatibility date of its own and is not first.
        name: "namespace-shim",
        modules: [{ type: "ESModule", path: "shim.mjs", contents: NAMESPACE_SHIM }],
        bindings: { ALIASES: aliases },
        serviceBindings,
      },
    ],
  });
  await mf.ready;
  const url = await mf.unsafeGetDirectURL("dispatcher");
  process.stdout.write(JSON.stringify({ url: url.href.replace(/\/$/, "") }) + "\n");
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    await mf.dispose();
    process.exit(0);
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

await main();
