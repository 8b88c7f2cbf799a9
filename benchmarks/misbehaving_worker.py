"""Workers that write their answers the way real development servers do, for bench_serve.py.

    python benchmarks/misbehaving_worker.py --kind split|http10|chunked|oneshot --port N

Built on ``http.server`` (a thread per connection, Nagle on, as in Flask's and Werkzeug's
development servers). Every kind answers the same small JSON document on every path:

- ``oneshot``: HTTP/1.1 keep-alive, head and body in one ``send`` (the well-behaved baseline);
- ``split``:   HTTP/1.1 keep-alive, head and body in two ``send`` calls (``http.server``'s own
  habit: ``end_headers()`` then ``wfile.write(body)``);
- ``http10``:  HTTP/1.0, no ``Content-Length``: the body ends when the connection closes;
- ``chunked``: HTTP/1.1 keep-alive, ``Transfer-Encoding: chunked`` in 32 small chunks, one
  ``send`` each.
"""

from __future__ import annotations

import argparse
import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BODY = json.dumps(
    {
        "worker": "competitive-analysis",
        "industry": "saas",
        "competitors": [{"name": "acme", "threat": "medium"}, {"name": "globex", "threat": "low"}],
        "summary": "Crowded at the top, open in the mid-market.",
    }
).encode()
KINDS = ("oneshot", "split", "http10", "chunked")
CHUNKS = 32


def handler_for(kind: str) -> type[BaseHTTPRequestHandler]:
    """A request handler class answering ``BODY`` the ``kind`` way."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0" if kind == "http10" else "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            if kind == "oneshot":
                head = (
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    b"Content-Length: %d\r\n\r\n" % len(BODY)
                )
                self.wfile.write(head + BODY)
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            if kind == "split":
                self.send_header("Content-Length", str(len(BODY)))
            elif kind == "chunked":
                self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            if kind == "chunked":
                step = -(-len(BODY) // CHUNKS)
                for start in range(0, len(BODY), step):
                    piece = BODY[start : start + step]
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                self.wfile.write(b"0\r\n\r\n")
            else:
                self.wfile.write(BODY)

        do_GET = do_POST = _answer

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kind", choices=KINDS, required=True)
    parser.add_argument("--port", type=int, required=True)
    options = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", options.port), handler_for(options.kind))
    server.daemon_threads = True
    server.request_queue_size = 1024
    server.serve_forever()


if __name__ == "__main__":
    main()
