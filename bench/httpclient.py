"""A small keep-alive HTTP/1.1 JSON client for Kinto (one per thread), and the users."""

import base64
import http.client
import json
import threading
from collections import Counter
from typing import NamedTuple
from urllib.parse import urlsplit


def basic_auth(user, password):
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return f"Basic {token}"


ADMIN = basic_auth("admin", "admin")  # creates the bucket, owns it: the collection's writer
REVIEWER = basic_auth("reviewer", "s3cret")  # may write (answer) the records given to them

# A connection that the server closed while idle fails on its next request with one of these;
# that request never reached the server, so it is sent again once.
STALE = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError)


class Response(NamedTuple):
    status: int  # 0: no response (connection refused, timeout...)
    body: bytes
    headers: dict

    def json(self):
        try:
            return json.loads(self.body or b"null")
        except ValueError:
            return None


class Kinto:
    """Requests to one Kinto server (``http://127.0.0.1:N/v1``) on one connection."""

    def __init__(self, base_url, timeout=60):
        parts = urlsplit(base_url)
        self.host, self.port = parts.hostname, parts.port
        self.prefix = parts.path.rstrip("/")
        self.timeout = timeout
        self._connection = None

    def connect(self):
        if self._connection is None:
            self._connection = http.client.HTTPConnection(self.host, self.port, self.timeout)
            self._connection.connect()

    def close(self):
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def request(self, method, path, body=None, auth=None, headers=None):
        payload = None if body is None else json.dumps(body).encode()
        sent = {"Accept": "application/json", **(headers or {})}
        if payload is not None:
            sent["Content-Type"] = "application/json"
        if auth:
            sent["Authorization"] = auth
        for attempt in (1, 2):
            reused = self._connection is not None
            try:
                self.connect()
                self._connection.request(method, self.prefix + path, payload, sent)
                response = self._connection.getresponse()
                data = response.read()
            except STALE:
                self.close()
                if reused and attempt == 1:
                    continue
                return Response(0, b"", {})
            except (OSError, http.client.HTTPException):
                self.close()
                return Response(0, b"", {})
            if response.getheader("Connection", "").lower() == "close":
                self.close()
            return Response(response.status, data, dict(response.getheaders()))
        return Response(0, b"", {})  # pragma: no cover

    def get(self, path, auth=None):
        return self.request("GET", path, auth=auth)


class Tally:
    """Responses per request class, e.g. ("memory", "answer POST") -> Counter({200: 99})."""

    def __init__(self):
        self._lock = threading.Lock()
        self.counts = {}

    def add(self, key, status):
        with self._lock:
            self.counts.setdefault(key, Counter())[status] += 1

    def failures(self):
        """{key: (total, {status: count})} of the non-2xx responses."""
        out = {}
        for key, counter in sorted(self.counts.items()):
            bad = {s: n for s, n in counter.items() if not (isinstance(s, int) and 200 <= s < 300)}
            out[key] = (sum(counter.values()), bad)
        return out
