"""A PostgreSQL database of its own for one test run, on any machine.

The tests run every test on PostgreSQL too, and never skip it: so ``make test`` must find a
PostgreSQL wherever it runs, and two runs on one server (two engineers, CI beside a developer)
must never flush each other's data. ``python -m stepfunction.testing.postgresql -- CMD ...``:

1. takes the server of ``$STEPFUNCTION_TEST_POSTGRESQL_URL`` when it is set (then it must
   answer), else ``postgresql://postgres@127.0.0.1:5432/``, else, when nothing answers there,
   starts an embedded PostgreSQL from the ``pgserver`` wheel (it bundles PostgreSQL 16);
2. creates a database with a name no other run uses, exports its URL as
   ``$STEPFUNCTION_TEST_POSTGRESQL_URL`` and runs CMD;
3. drops the database (and stops the embedded server), and exits with CMD's exit code.

As root, PostgreSQL refuses to run; pgserver then runs it as a system user ``pgserver``, which
it creates with ``useradd`` the first time.
"""

import argparse
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlencode

from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool


ENV = "STEPFUNCTION_TEST_POSTGRESQL_URL"
DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/"
MAINTENANCE_DATABASE = "postgres"  # exists on every server, embedded ones included
CONNECT_TIMEOUT = 1  # seconds (libpq waits at least 2 for an answer that never comes)
PROG = "stepfunction.testing.postgresql"


class Unreachable(RuntimeError):
    """The server asked for does not answer, and no embedded one may replace it."""


def database_name(prefix: str = "stepfunction_test") -> str:
    """A database name that no other run picks: concurrent runs each flush only their own.

    The process id says which run left a database behind (after a ``kill -9``).
    """
    return f"{prefix}_{os.getpid()}_{secrets.token_hex(4)}"


def database_url(server_url: str, database: str) -> str:
    """``server_url`` with its database replaced, everything else (socket, user) kept.

    A socket directory stays as it is (``?host=/tmp/…``, as libpq reads it too), not
    percent-encoded: a ``%`` would break the ``.ini`` files that tests write the URL into.
    """
    return render(make_url(server_url).set(database=database))


def render(url: URL, hide_password: bool = False) -> str:
    """The URL as a string, its query (a socket directory) left readable."""
    base = url.set(query={}).render_as_string(hide_password=hide_password)
    return f"{base}?{urlencode(url.query, doseq=True, safe='/')}" if url.query else base


def admin_url(server_url: str) -> URL:
    """Where to connect to create and drop databases: the URL's own database, if it names one
    (the one we know we may use), else the maintenance database; with psycopg2, Kinto's
    driver (SQLAlchemy's default for ``postgresql://`` is psycopg 3, not installed)."""
    url = make_url(server_url).set(drivername="postgresql+psycopg2")
    return url if url.database else url.set(database=MAINTENANCE_DATABASE)


def shown(url: str | URL) -> str:
    """A URL as it may be printed: without its password (if it has one)."""
    url = make_url(url)
    return render(url, hide_password=bool(url.password))


def why_unreachable(server_url: str) -> str | None:
    """``None`` when the server answers within about a second, else libpq's reason."""
    engine = create_engine(
        admin_url(server_url),
        poolclass=NullPool,
        connect_args={"connect_timeout": CONNECT_TIMEOUT},
    )
    try:
        with engine.connect():
            return None
    except OperationalError as e:
        return " ".join(str(e.orig).split())
    finally:
        engine.dispose()


@contextmanager
def embedded_server() -> Iterator[str]:
    """A PostgreSQL of pgserver's, in a temporary directory removed afterwards; its URL."""
    with warnings.catch_warnings():
        # platformdirs warns on import when $XDG_RUNTIME_DIR is unset (CI, containers), and
        # falls back to a directory in /tmp, which is all pgserver needs for its lock file.
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
        import pgserver

    with tempfile.TemporaryDirectory(prefix="stepfunction-postgresql-") as parent:
        started = time.monotonic()
        server = pgserver.get_server(Path(parent) / "data", cleanup_mode="delete")
        try:
            print(
                f"{PROG}: embedded PostgreSQL started in {time.monotonic() - started:.2f} s",
                file=sys.stderr,
            )
            yield server.get_uri()
        finally:
            server.cleanup()


@contextmanager
def server(url: str | None = None, fallback: bool | None = None) -> Iterator[str]:
    """The URL of a PostgreSQL server that answers.

    ``url`` (else ``$STEPFUNCTION_TEST_POSTGRESQL_URL``, else the default local server) is
    tried first. When it does not answer, an embedded server replaces it if ``fallback``
    allows; by default only the default server may be replaced: a server asked for by name
    that does not answer is a mistake to report, not to hide.
    """
    asked = url or os.environ.get(ENV)
    url = asked or DEFAULT_SERVER
    if fallback is None:
        fallback = not asked
    reason = why_unreachable(url)
    if reason is None:
        yield url
        return
    if not fallback:
        raise Unreachable(f"no PostgreSQL answers at {shown(url)}: {reason}")
    print(f"{PROG}: no PostgreSQL at {shown(url)} ({reason})", file=sys.stderr)
    with embedded_server() as embedded:
        yield embedded


@contextmanager
def fresh_database(server_url: str) -> Iterator[str]:
    """A new database on the server (in UTC), dropped afterwards even if connections remain;
    its URL."""
    name = database_name()
    engine = create_engine(admin_url(server_url), poolclass=NullPool, isolation_level="AUTOCOMMIT")
    quoted = engine.dialect.identifier_preparer.quote(name)
    try:
        with engine.connect() as connection:
            connection.execute(text(f"CREATE DATABASE {quoted}"))
            # Kinto warns on every connection to a database whose time zone is not 'UTC'.
            connection.execute(text(f"ALTER DATABASE {quoted} SET timezone TO 'UTC'"))
        try:
            yield database_url(server_url, name)
        finally:
            with engine.connect() as connection:
                connection.execute(text(f"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)"))
    finally:
        engine.dispose()


def run(command: list[str], env: dict[str, str]) -> int:
    """Run ``command`` to its end; its exit code (128 + N when killed by signal N).

    Ctrl-C reaches the command from the terminal (same process group), so here it is
    ignored, to clean up once the command has finished; SIGTERM is passed on to it.
    """
    with subprocess.Popen(command, env=env) as process:
        previous = {
            signal.SIGINT: signal.signal(signal.SIGINT, signal.SIG_IGN),
            signal.SIGTERM: signal.signal(signal.SIGTERM, lambda *_: process.terminate()),
        }
        try:
            code = process.wait()
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
    return code if code >= 0 else 128 - code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=f"python -m {PROG}",
        description="Run a command with $STEPFUNCTION_TEST_POSTGRESQL_URL set to a new "
        "database of its own (dropped afterwards), on the server of that variable if set, "
        f"else on {DEFAULT_SERVER}, else on an embedded PostgreSQL.",
    )
    parser.add_argument("--server", help=f"the server to use (default: ${ENV}, else the local)")
    parser.add_argument(
        "--fallback",
        action=argparse.BooleanOptionalAction,
        help="start an embedded PostgreSQL when the server does not answer "
        "(default: only for the default server)",
    )
    parser.add_argument("command", nargs="+", help="the command to run, after --")
    args = parser.parse_args(argv)
    try:
        with server(args.server, args.fallback) as url, fresh_database(url) as database:
            print(f"{PROG}: {ENV}={shown(database)}", file=sys.stderr)
            return run(args.command, {**os.environ, ENV: database})
    except Unreachable as e:
        parser.exit(2, f"{parser.prog}: {e}\n")


if __name__ == "__main__":
    sys.exit(main())
