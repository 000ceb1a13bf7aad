"""A local OpenAI-compatible chat-completions server for tests: it answers from a script, in order.

Script entries: ``("content", text)`` a completion whose message is ``text``; ``("usage", (text,
usage))`` the same with a ``usage`` object; ``("raw", body)`` a 200 with ``body`` as is;
``("status", code)`` an empty reply with that status; ``("sleep", seconds)`` a reply of ``[]``
after a pause; ``("slow", (seconds, text))`` ``text`` after a pause; ``("call", fn)`` the text
``fn(request body)`` (a scripted model). An exhausted script answers ``[]``. Every request is kept in ``requests`` (path, JSON body, Authorization header).
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeChatServer:
    """A chat-completions endpoint on 127.0.0.1 that replays a script of replies."""

    def __init__(self, script):
        self.script, self.requests = list(script), []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests.append({"path": self.path, "body": body, "auth": self.headers.get("Authorization")})
                kind, payload = server.script.pop(0) if server.script else ("content", "[]")
                usage = None
                if kind == "sleep":
                    time.sleep(payload)
                    kind, payload = "content", "[]"
                elif kind == "slow":
                    time.sleep(payload[0])
                    kind, payload = "content", payload[1]
                elif kind == "call":
                    kind, payload = "content", payload(body)
                elif kind == "usage":
                    kind, (payload, usage) = "content", payload
                if kind == "status":
                    self.send_response(payload)
                    self.end_headers()
                    return
                reply = {"choices": [{"message": {"role": "assistant", "content": payload}}]}
                if usage is not None:
                    reply["usage"] = usage
                data = (payload if kind == "raw" else json.dumps(reply)).encode()
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:  # the client gave up on a slow reply
                    pass

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def prompts(self):
        """The last message of every request, in order."""
        return [r["body"]["messages"][-1]["content"] for r in self.requests]

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
