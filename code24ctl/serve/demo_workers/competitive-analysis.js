// Demo Worker for `code24ctl serve --demo --runtime workerd`: competitive-analysis.
export default {
  async fetch(request) {
    const data = await body(request);
    const industry = String(data.industry ?? "saas");
    const names = Array.isArray(data.competitors) && data.competitors.length ? data.competitors : ["acme"];
    return Response.json({
      worker: "competitive-analysis",
      path: new URL(request.url).pathname,
      industry,
      competitors: names.map((name) => ({ name: String(name), positioning: "incumbent, broad suite", threat: "medium" })),
      summary: `The ${industry} market is crowded at the top and open in the mid-market.`,
      generated_at: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
    });
  },
};

async function body(request) {
  try {
    const data = await request.json();
    return data !== null && typeof data === "object" && !Array.isArray(data) ? data : {};
  } catch {
    return {};
  }
}
