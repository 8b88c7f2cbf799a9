// Demo Worker for `code24ctl serve --demo --runtime workerd`: designer-worker, on a bad day.
// It answers what the real one did: an HTML "502 Bad Gateway" page. Behind the dispatcher that
// page comes out as the designer's configured JSON fallback (upstream_html).
const BAD_GATEWAY_PAGE = `<!DOCTYPE html>
<html>
<head><title>502 Bad Gateway</title></head>
<body>
<center><h1>502 Bad Gateway</h1></center>
<hr><center>cloudflare</center>
</body>
</html>
`;

export default {
  async fetch(request) {
    await request.arrayBuffer();
    return new Response(BAD_GATEWAY_PAGE, {
      status: 502,
      headers: { "content-type": "text/html" },
    });
  },
};
