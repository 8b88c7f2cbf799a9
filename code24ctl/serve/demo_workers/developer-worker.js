// Demo Worker for `code24ctl serve --demo --runtime workerd`: developer-worker.
export default {
  async fetch(request) {
    const data = await body(request);
    const topic = String(data.topic ?? "release notes");
    const title = topic.replace(/\b\w/g, (c) => c.toUpperCase());
    return Response.json({
      worker: "developer-worker",
      path: new URL(request.url).pathname,
      topic,
      content: `# ${title}\n\n- Faster builds\n- Clearer errors\n`,
      format: "markdown",
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
