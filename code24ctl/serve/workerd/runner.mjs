// `code24ctl serve --runtime workerd`: the deployed dispatcher and the workers' own code in one
// workerd process, through miniflare. Started by code24ctl/serve/workerd/runtime.py:
//
//   node runner.mjs MINIFLARE_PACKAGE_DIR
//
// stdin: one JSON document per line. The first is the plan (what to run, built in plan.py);
// later ones are {"reload": PLAN} (swap the plan, keeping the old one if the new one does not
// start). stdin closing, SIGTERM or SIGINT stop workerd and this process.
// stdout: one JSON event per line: {"event": "ready", "url"} once listening, {"event":
// "request", ...} for each answer (the dispatcher's own log line), {"event": "data_point"} for
// each ANALYTICS write, {"event": "reloaded"} / {"event": "reload_failed", "error"}. Nothing
// else is ever written there.
// stderr: what the Workers log (console.*), and miniflare's warnings.
import crypto from "node:crypto";
import { createRequire } from "node:module";
import path from "node:path";
import readline from "node:readline";

const miniflareDir = path.resolve(process.argv[2]);
const require = createRequire(path.join(miniflareDir, "package.json"));
const { Miniflare, Log, LogLevel } = require(miniflareDir);

const DATA_POINT_MARKER = "CODE24_SERVE_DATA_POINT ";

// Only the dispatcher can make a record (a request or data_point event). Its record lines and
// the user Workers' console output arrive on one stream (workerd's stdout), so the shape of a
// line proves nothing: a Worker can print {"code24":"request",...} too. The dispatcher's lines
// therefore carry this key, made here for this run and given to the dispatcher (binding
// CODE24_RECORD_KEY) and to the ANALYTICS module it wraps, and to no other Worker. It cannot
// be guessed (256 random bits) nor read: workerd gives each Worker only its own bindings, and
// a user Worker's service bindings reach only other aliases (plan.py), never the dispatcher's
// env. A line without it is shown as the log line it is. The key never leaves this process
// except into workerd's config: serve (Python) never holds it, so neither -v/-vv nor --json can
// show it, and every line passed on here is masked all the same (mask). A channel user Workers
// cannot write to at all (the dispatcher reporting to an endpoint of serve's) would cost every
// request a subrequest and the deployed dispatcher more code; a key costs one string field.
const RECORD_KEY = crypto.randomBytes(32).toString("hex");
const DATA_POINT_PREFIX = `${DATA_POINT_MARKER}${RECORD_KEY} `;
const RECORD_START = '{"code24":"request"';

function mask(text) {
  return text.replaceAll(RECORD_KEY, "***");
}

// miniflare's Log prints with console.log, on this process's stdout, which carries events only.
class StderrLog extends Log {
  log(message) {
    process.stderr.write(mask(String(message)) + "\n");
  }
}

// The dispatch namespace binding (env.DISPATCHER), a wrapped binding: workerd imports this module
// into the dispatcher's isolate and calls it with this module's own env (a service binding per
// alias that has code, ALIASES: alias -> binding name).
//
// As the real namespace: get() never throws; a name without a Worker fails at fetch() with
// "Worker not found.". get()'s options ({limits: {cpuMs, subRequests}, outbound: {...}}) are
// accepted and not enforced: workerd has no per-call CPU or subrequest limit (workerd #1291).
const NAMESPACE_MODULE = `
export default function makeNamespace(env) {
  return {
    get(name, args, options) {
      const binding = Object.hasOwn(env.ALIASES, name) ? env.ALIASES[name] : undefined;
      if (binding === undefined) {
        return { async fetch() { throw new Error("Worker not found."); } };
      }
      return env[binding];
    },
  };
}
`;

// The Analytics Engine dataset (env.ANALYTICS), recorded locally: each data point is printed on
// workerd's stdout behind a marker and the record key (env is this module's own: RECORD_KEY),
// and this runner turns it into a data_point event.
const ANALYTICS_MODULE = `
export default function dataset(env) {
  const prefix = ${JSON.stringify(DATA_POINT_MARKER)} + env.RECORD_KEY + " ";
  return {
    writeDataPoint(point) {
      console.log(prefix + JSON.stringify(point ?? null));
    },
  };
}
`;

function emit(event) {
  process.stdout.write(mask(JSON.stringify(event)) + "\n");
}

function moduleType(contentType) {
  switch (contentType) {
    case "application/javascript+module":
    case "text/javascript+module":
      return "ESModule";
    case "application/javascript":
    case "text/javascript":
      return "CommonJS";
    case "application/wasm":
      return "CompiledWasm";
    case "text/plain":
      return "Text";
    case "text/x-python":
      return "PythonModule";
    case "text/x-python-requirement":
      return "PythonRequirement";
    default:
      return "Data";
  }
}

// An alias served by an upstream URL with a base path (or https): the base goes in front.
const FORWARD_MODULE = `
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    return fetch(new Request(env.FORWARD_TO + url.pathname + url.search, request));
  },
};
`;

// One user Worker of the plan as miniflare worker options.
function userWorker(spec) {
  if (spec.forward_to !== undefined) {
    return {
      name: spec.name,
      compatibilityDate: spec.compatibility_date,
      modules: [{ type: "ESModule", path: "forward.mjs", contents: FORWARD_MODULE }],
      bindings: { FORWARD_TO: spec.forward_to },
    };
  }
  const options = {
    name: spec.name,
    compatibilityDate: spec.compatibility_date,
    compatibilityFlags: spec.compatibility_flags ?? [],
    bindings: { ...(spec.vars ?? {}), ...(spec.secrets ?? {}) },
    kvNamespaces: spec.kv ?? {},
    r2Buckets: spec.r2 ?? {},
    d1Databases: spec.d1 ?? {},
    durableObjects: spec.durable_objects ?? {},
    serviceBindings: spec.services ?? {},
  };
  if (spec.service_worker) {
    options.script = Buffer.from(spec.modules[0].contents, "base64").toString("utf8");
    options.scriptPath = spec.modules[0].path;
  } else {
    // The entry module first: miniflare takes the first module as the entry point.
    options.modulesRoot = spec.root;
    options.modules = spec.modules.map((m) => ({
      type: moduleType(m.content_type),
      path: m.path,
      contents: Buffer.from(m.contents, "base64"),
    }));
  }
  if (spec.outbound) options.outboundService = spec.outbound;
  return options;
}

function options(plan) {
  const aliases = {};
  const namespaceServices = {};
  for (const [alias, target] of Object.entries(plan.aliases)) {
    const binding = `ALIAS_${Object.keys(aliases).length}`;
    aliases[alias] = binding;
    namespaceServices[binding] =
      target.external !== undefined
        ? { external: { address: target.external, http: {} } }
        : target.worker;
  }
  const dispatcher = plan.dispatcher;
  return {
    log: new StderrLog(LogLevel.WARN),
    cf: false,
    handleRuntimeStdio,
    ...(plan.persist
      ? {
          kvPersist: path.join(plan.persist, "kv"),
          r2Persist: path.join(plan.persist, "r2"),
          d1Persist: path.join(plan.persist, "d1"),
          durableObjectsPersist: path.join(plan.persist, "do"),
        }
      : {}),
    workers: [
      {
        name: "dispatcher",
        modules: [{ type: "ESModule", path: dispatcher.path }],
        modulesRoot: path.dirname(dispatcher.path),
        compatibilityDate: dispatcher.compatibility_date,
        compatibilityFlags: dispatcher.compatibility_flags ?? [],
        bindings: { ...dispatcher.bindings, CODE24_RECORD_KEY: RECORD_KEY },
        kvNamespaces: dispatcher.kv ?? {},
        wrappedBindings: { DISPATCHER: "code24-namespace", ANALYTICS: "code24-analytics" },
        unsafeDirectSockets: [{ host: plan.host, port: plan.port }],
      },
      {
        // A wrapped-binding worker has no compatibility date of its own and is not first.
        name: "code24-namespace",
        modules: [{ type: "ESModule", path: "namespace.mjs", contents: NAMESPACE_MODULE }],
        bindings: { ALIASES: aliases },
        serviceBindings: namespaceServices,
      },
      {
        name: "code24-analytics",
        modules: [{ type: "ESModule", path: "analytics.mjs", contents: ANALYTICS_MODULE }],
        bindings: { RECORD_KEY },
      },
      ...plan.workers.map(userWorker),
    ],
  };
}

// workerd's stdout carries the dispatcher's one JSON line per request ({"code24": "request"}),
// the data points, and whatever the user Workers log; only the first two are events, and only
// when they carry the record key. Everything else, a Worker's imitation of a record included,
// is shown as the log line it is.
function handleRuntimeStdio(stdout, stderr) {
  readline.createInterface({ input: stdout, crlfDelay: Infinity }).on("line", (line) => {
    const event = recordEvent(line);
    if (event !== null) emit(event);
    else process.stderr.write(mask(line) + "\n");
  });
  readline.createInterface({ input: stderr, crlfDelay: Infinity }).on("line", (line) => {
    process.stderr.write(mask(line) + "\n");
  });
}

// The event a line of the dispatcher's stands for, or null: not a record.
function recordEvent(line) {
  if (line.startsWith(DATA_POINT_PREFIX)) {
    try {
      return { event: "data_point", point: JSON.parse(line.slice(DATA_POINT_PREFIX.length)) };
    } catch {
      return null;
    }
  }
  if (!line.startsWith(RECORD_START)) return null;
  let record;
  try {
    record = JSON.parse(line);
  } catch {
    return null;
  }
  if (record === null || typeof record !== "object" || record.record_key !== RECORD_KEY) {
    return null;
  }
  delete record.record_key;
  return { ...record, event: "request" };
}

let mf = null;
let current = null;
let stopping = false;

async function stop(code = 0) {
  if (stopping) return;
  stopping = true;
  try {
    if (mf !== null) await mf.dispose();
  } finally {
    process.exit(code);
  }
}

async function start(plan) {
  mf = new Miniflare(options(plan));
  await mf.ready;
  const url = await mf.unsafeGetDirectURL("dispatcher");
  // Later plans keep the port workerd got: a port of 0 would move on every reload.
  current = { ...plan, port: Number(url.port) };
  emit({ event: "ready", url: url.href.replace(/\/$/, ""), port: current.port });
}

async function reload(plan) {
  const kept = { ...plan, port: current.port };
  try {
    await mf.setOptions(options(kept));
    current = kept;
    emit({ event: "reloaded" });
  } catch (err) {
    const error = String(err?.message ?? err);
    try {
      await mf.setOptions(options(current));
    } catch (again) {
      const why = again?.message ?? again;
      emit({
        event: "fatal",
        error: `reload failed (${error}); the previous plan did not restart: ${why}`,
      });
      await stop(1);
      return;
    }
    emit({ event: "reload_failed", error });
  }
}

process.on("SIGTERM", () => stop(0));
process.on("SIGINT", () => stop(0));

let queue = Promise.resolve();
const input = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
input.on("line", (line) => {
  if (!line.trim()) return;
  const message = JSON.parse(line);
  queue = queue.then(async () => {
    if (mf === null) {
      try {
        await start(message);
      } catch (err) {
        emit({ event: "fatal", error: String(err?.message ?? err) });
        await stop(2);
      }
    } else if (message.reload !== undefined) {
      await reload(message.reload);
    }
  });
});
input.on("close", () => {
  queue.then(() => stop(0));
});
