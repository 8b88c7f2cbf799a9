// Demo Worker for `code24ctl serve --demo --runtime workerd`: market-research.
export default {
  async fetch(request) {
    const data = await body(request);
    return Response.json({
      worker: "market-research",
      path: new URL(request.url).pathname,
      market: data.market ?? "developer tools",
      region: data.region ?? "EU",
      size_usd_millions: 1840,
      growth_pct: 11.5,
      segments: ["startups", "mid-market", "enterprise"],
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
