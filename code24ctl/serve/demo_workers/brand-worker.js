// Demo Worker for `code24ctl serve --demo --runtime workerd`: brand-worker.
export default {
  async fetch(request) {
    const data = await body(request);
    const company = String(data.company ?? "Code24");
    return Response.json({
      worker: "brand-worker",
      path: new URL(request.url).pathname,
      company,
      tone: data.tone ?? "confident",
      tagline: `${company}: ship the idea, not the boilerplate.`,
      palette: ["#0B1F3A", "#2F80ED", "#F2C94C"],
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
