"""A local SMTP server that keeps the mails it receives: for the tests and ``make serve``.

``Mailbox`` runs aiosmtpd on 127.0.0.1 (a free port unless one is given) and keeps every
message, parsed. ``refuse`` makes it answer 451 (try again later), as a server that is down
for a moment does. ``serve_page(port)`` shows the messages at ``http://127.0.0.1:<port>/``,
newest first, their links clickable, each one's HTML part at ``/<n>.html``: the mail client
of ``make serve``.
"""

import email
import email.policy
import html
import re
import socket
import threading
import time
from wsgiref.simple_server import WSGIRequestHandler, make_server

from aiosmtpd.controller import Controller


URL = re.compile(r"https?://[^\s<>\"]+")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Mailbox:
    def __init__(self, port=None):
        self.port = port or free_port()
        self.messages = []
        self.refused = 0
        self.refuse = False
        self.lock = threading.Lock()
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)

    # aiosmtpd's handler hook
    async def handle_DATA(self, server, session, envelope):
        if self.refuse:
            with self.lock:
                self.refused += 1
            return "451 4.3.0 Mailbox unavailable, try again later"
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.lock:
            self.messages.append(message)
        return "250 OK"

    def start(self):
        self.controller.start()
        return self

    def stop(self):
        self.controller.stop()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def clear(self):
        with self.lock:
            self.messages.clear()
            self.refused = 0
        self.refuse = False

    def to(self, address):
        """The messages sent to ``address``, in the order received."""
        with self.lock:
            return [m for m in self.messages if address in m["To"]]

    def wait(self, count, address=None, timeout=30):
        """At least ``count`` messages (to ``address``), within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.to(address) if address else list(self.messages)
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(found)} message(s), not {count}, within {timeout} s")
            time.sleep(0.02)


def text_of(message):
    return message.get_body(preferencelist=("plain",)).get_content()


def links_of(message):
    """``{"Approve": url, "Reject": url, "dashboard": url}`` of a step's mail."""
    found = {}
    for line in text_of(message).splitlines():
        urls = URL.findall(line)
        if not urls:
            continue
        label = line.split(":", 1)[0].strip()
        key = label if label in ("Approve", "Reject") else "dashboard"
        found[key] = urls[0]
    return found


def html_of(message):
    """The message's HTML part, or None."""
    part = message.get_body(preferencelist=("html",))
    return part.get_content() if part is not None else None


HTML_POLICY = "default-src 'none'; style-src 'unsafe-inline'; form-action 'none'"


def page_app(mailbox):
    """A WSGI app that lists the mailbox's messages (``/``), and shows each one's HTML part as
    a mail client would (``/<n>.html``, the n-th message received, from 0)."""

    def app(environ, start_response):
        with mailbox.lock:
            messages = list(mailbox.messages)
        path = environ.get("PATH_INFO", "/")
        if path != "/":
            number = path.strip("/").removesuffix(".html")
            found = (
                messages[int(number)] if number.isdigit() and int(number) < len(messages) else None
            )
            markup = html_of(found) if found is not None else None
            if markup is None:
                start_response("404 Not Found", [("Content-Type", "text/plain")])
                return [b"No such message"]
            headers = [
                ("Content-Type", "text/html; charset=utf-8"),
                ("Content-Security-Policy", HTML_POLICY),
            ]
            start_response("200 OK", headers)
            return [markup.encode("utf-8")]
        parts = []
        for number, m in reversed(list(enumerate(messages))):
            body = html.escape(text_of(m))
            body = URL.sub(lambda u: f'<a href="{u.group(0)}">{u.group(0)}</a>', body)
            shown = f' <a href="/{number}.html">As HTML</a>' if html_of(m) is not None else ""
            parts.append(
                f"<article><h2>{html.escape(m['Subject'] or '')}</h2>"
                f"<p>To {html.escape(m['To'] or '')}, {html.escape(m['Date'] or '')}.{shown}</p>"
                f"<pre>{body}</pre></article>"
            )
        page = (
            '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            '<meta http-equiv="refresh" content="5"><title>Local mailbox</title></head>'
            f"<body><h1>Local mailbox ({len(messages)})</h1>"
            f"{''.join(parts) or '<p>No mail yet.</p>'}</body></html>"
        )
        start_response(
            "200 OK",
            [
                ("Content-Type", "text/html; charset=utf-8"),
                ("Content-Security-Policy", "default-src 'none'"),
            ],
        )
        return [page.encode("utf-8")]

    return app


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, *args):
        pass


def serve_page(mailbox, port):
    """Serve the mailbox's page on 127.0.0.1:``port`` from a daemon thread; returns the server."""
    server = make_server("127.0.0.1", port, page_app(mailbox), handler_class=_QuietHandler)
    threading.Thread(target=server.serve_forever, name="mailbox-page", daemon=True).start()
    return server
