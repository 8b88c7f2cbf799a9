// Stand-in for the dispatch namespace binding (env.DISPATCHER) inside miniflare.
//
// Miniflare's own `dispatchNamespaces` option proxies to Cloudflare, so it is useless offline.
// Instead the dispatcher gets DISPATCHER as a *wrapped binding*: workerd imports this module into
// the dispatcher's isolate and calls the default export with this module's own env, which holds
// a service binding per user worker plus ALIASES (alias -> binding name).
//
// Like the real namespace, get() is lazy: it never throws, and a missing worker only shows when
// fetch() throws an Error whose message starts with "Worker not found".
export default function makeNamespace(env) {
  return {
    get(name) {
      const binding = Object.hasOwn(env.ALIASES, name) ? env.ALIASES[name] : undefined;
      if (binding !== undefined) return env[binding];
      return {
        async fetch() {
          throw new Error("Worker not found.");
        },
      };
    },
  };
}
