"""Whether ``stepfunction.link_secret`` may sign links that reach people (start-up's check).

Anyone who guesses the secret makes links that answer any step. The sample of ``config.ini``
is public, and a careless choice (``"a" * 32``, ``"0123456789abcdef" * 2``, a phrase) is
guessable, so both are refused unless the server's ``public_url`` is a loopback address
(``127.0.0.0/8``, ``::1``, ``localhost``): there only this machine follows its links, which
is what ``make serve`` with ``config.ini`` needs.

The strength is *estimated*, not measured (no test can tell a random string from one that
only looks random): ``length × bits per character``, the bits per character being the
Shannon entropy of the secret's own characters, or of the steps between neighbouring
characters (``ord(b) - ord(a)``) when that is lower, which exposes runs; a secret that
repeats a shorter string counts that string only. ``secrets.token_urlsafe(32)`` (43
characters) estimates at 180 bits or more; ``"a" * 32`` at 0; the alphabet at 7;
``"Password1!" * 4`` at 31. At least ``MIN_BITS`` is required.
"""

import collections
import ipaddress
import math
from urllib.parse import urlparse


MIN_CHARS = 32
MIN_BITS = 128
# The secret config.ini ships: public, so never one that reaches people.
SAMPLE_SECRETS = frozenset({"local-development-only-not-a-secret-0123456789"})
GENERATE = 'python -c "import secrets; print(secrets.token_urlsafe(32))"'


def _entropy(symbols):
    """Shannon entropy, in bits per symbol, of the symbols' own distribution."""
    counts = collections.Counter(symbols)
    total = len(symbols)
    return -sum(n / total * math.log2(n / total) for n in counts.values()) if total else 0.0


def _unit(secret):
    """The shortest string whose repetition ``secret`` is (``secret`` itself if none)."""
    for size in range(1, len(secret) // 2 + 1):
        if all(secret[i] == secret[i % size] for i in range(size, len(secret))):
            return secret[:size]
    return secret


def estimated_bits(secret):
    """How many bits of a random secret ``secret`` looks like it holds (see the module)."""
    secret = _unit(secret)
    steps = [ord(b) - ord(a) for a, b in zip(secret, secret[1:], strict=False)]
    return max(0.0, len(secret) * min(_entropy(secret), _entropy(steps)))


def is_loopback(url):
    """Whether ``url`` names this machine only: 127.0.0.0/8, ::1 or localhost."""
    host = (urlparse(url or "").hostname or "").rstrip(".")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def problem(secret, public_url):
    """Why ``secret`` can't sign links served at ``public_url``, or None when it can."""
    if not secret:
        return None
    if len(secret) < MIN_CHARS:
        return f"at least {MIN_CHARS} characters are needed (generate one: {GENERATE})"
    if is_loopback(public_url):
        return None
    if secret in SAMPLE_SECRETS:
        return (
            "this is config.ini's sample secret, public, usable only with a loopback "
            f"public_url; generate yours: {GENERATE}"
        )
    bits = estimated_bits(secret)
    if bits < MIN_BITS:
        return (
            f"too guessable (about {bits:.0f} bits estimated, {MIN_BITS} needed; allowed "
            f"only with a loopback public_url); generate one: {GENERATE}"
        )
    return None
