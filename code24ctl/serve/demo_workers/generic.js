// Demo Worker for `code24ctl serve --demo --runtime workerd`: any alias the demo does not know
// (env.ALIAS is its name).
export default {
  async fetch(request, env) {
    await request.arrayBuffer();
    return Response.json({
      worker: env.ALIAS,
      path: new URL(request.url).pathname,
      ok: true,
      generated_at: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
    });
  },
};
