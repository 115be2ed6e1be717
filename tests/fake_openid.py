"""A fake OpenID Connect provider on 127.0.0.1, for ``kinto.plugins.openid`` in tests.

Kinto's plugin reads the issuer's discovery document when it starts. This provider serves it,
approves every login at once (``/authorize`` redirects back with a code), trades any code for
the access token ``ACCESS_TOKEN``, and tells that token's user (``sub`` ``USER``).
"""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlparse


ACCESS_TOKEN = "ada-access-token"
USER = "ada"


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def reply(self, status, body=None, **headers):
        payload = json.dumps(body).encode() if body is not None else b""
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def do_GET(self):
        url = urlparse(self.path)
        issuer = self.server.issuer
        if url.path == "/.well-known/openid-configuration":
            self.reply(
                200,
                {
                    "issuer": issuer,
                    "authorization_endpoint": issuer + "/authorize",
                    "token_endpoint": issuer + "/token",
                    "userinfo_endpoint": issuer + "/userinfo",
                    "jwks_uri": issuer + "/jwks",
                },
            )
        elif url.path == "/authorize":
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            back = urlencode({"code": "the-code", "state": query.get("state", "")})
            self.reply(302, Location=f"{query.get('redirect_uri', '')}?{back}")
        elif url.path == "/userinfo":
            if self.headers.get("Authorization") == f"Bearer {ACCESS_TOKEN}":
                self.reply(200, {"sub": USER, "email": f"{USER}@example.com"})
            else:
                self.reply(401, {"error": "invalid_token"})
        else:
            self.reply(404, {})

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if urlparse(self.path).path == "/token":
            self.reply(200, {"access_token": ACCESS_TOKEN, "token_type": "Bearer"})
        else:
            self.reply(404, {})


class FakeProvider:
    """``with FakeProvider() as provider:`` ``provider.issuer`` is its URL while it runs."""

    def __enter__(self):
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.issuer = self.server.issuer = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()

    def settings(self, name="google"):
        """Kinto settings for this provider as the OpenID policy ``name``."""
        prefix = f"multiauth.policy.{name}."
        return {
            "includes": "stepfunction kinto.plugins.history kinto.plugins.openid",
            "multiauth.policies": f"basicauth {name}",
            prefix + "use": "kinto.plugins.openid.OpenIDConnectPolicy",
            prefix + "issuer": self.issuer,
            prefix + "client_id": "dashboard",
            prefix + "client_secret": "secret",
        }
