"""A PostgreSQL database of its own for each test run: names, URLs, and the real thing."""

import re
import subprocess
import sys
from pathlib import Path

import psycopg2
import pytest
from sqlalchemy.engine import make_url

from stepfunction.testing import postgresql
from tests.conftest import POSTGRESQL_URL


NOWHERE = "postgresql://postgres@127.0.0.1:1/"  # nothing listens on port 1
# Prints its database's URL and name, as connected to, then exits with the code asked.
CHILD = (
    "import os, sys, psycopg2\n"
    "url = os.environ['STEPFUNCTION_TEST_POSTGRESQL_URL']\n"
    "cursor = psycopg2.connect(url).cursor()\n"
    "cursor.execute('SELECT current_database()')\n"
    "print(url, cursor.fetchone()[0], sep='\\n')\n"
    "sys.exit(int(sys.argv[1]))\n"
)


def wrapper(*options, exit_code=0):
    """``python -m stepfunction.testing.postgresql OPTIONS -- python -c CHILD``."""
    return subprocess.run(
        [sys.executable, "-m", "stepfunction.testing.postgresql", *options, "--"]
        + [sys.executable, "-c", CHILD, str(exit_code)],
        capture_output=True,
        text=True,
        # initdb on a loaded machine, after any other run's (pgserver starts one at a time).
        timeout=180,
    )


def databases(server_url):
    url = postgresql.admin_url(server_url).set(drivername="postgresql")
    connection = psycopg2.connect(url.render_as_string(hide_password=False))
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT datname FROM pg_database")
            return {name for (name,) in cursor.fetchall()}
    finally:
        connection.close()


# The pure parts.


def test_database_names_are_unique_identifiers():
    names = {postgresql.database_name() for _ in range(100)}
    assert len(names) == 100
    for name in names:
        assert re.fullmatch(r"stepfunction_test_\d+_[0-9a-f]{8}", name)
        assert len(name) <= 63  # PostgreSQL's limit


@pytest.mark.parametrize(
    "server,expected",
    [
        ("postgresql://postgres@127.0.0.1:5432/", "postgresql://postgres@127.0.0.1:5432/run_1"),
        (
            "postgresql://postgres@127.0.0.1:5432/test",
            "postgresql://postgres@127.0.0.1:5432/run_1",
        ),
        ("postgresql://u:p%40ss@db.example:6543/x", "postgresql://u:p%40ss@db.example:6543/run_1"),
        (
            "postgresql://postgres:@/postgres?host=/tmp/pg",  # pgserver's: a Unix socket
            "postgresql://postgres:@/run_1?host=/tmp/pg",  # no %: .ini files would choke
        ),
    ],
)
def test_database_url_replaces_only_the_database(server, expected):
    assert postgresql.database_url(server, "run_1") == expected


def test_databases_are_created_from_the_urls_database_else_the_maintenance_one():
    assert postgresql.admin_url("postgresql://postgres@h/").database == "postgres"
    assert postgresql.admin_url("postgresql://postgres@h/test").database == "test"
    assert postgresql.admin_url("postgresql://postgres@h/").drivername == "postgresql+psycopg2"


def test_printed_urls_hide_passwords():
    assert postgresql.shown("postgresql://u:secret@h/d") == "postgresql://u:***@h/d"
    assert postgresql.shown("postgresql://u@h/d") == "postgresql://u@h/d"


# The real thing.


def test_the_command_gets_a_database_of_its_own_dropped_afterwards():
    result = wrapper("--server", POSTGRESQL_URL, exit_code=3)
    assert result.returncode == 3, result.stderr  # the command's exit code
    url, name = result.stdout.splitlines()
    assert url == postgresql.database_url(POSTGRESQL_URL, name)
    assert re.fullmatch(r"stepfunction_test_\d+_[0-9a-f]{8}", name)
    assert name not in databases(POSTGRESQL_URL)


def test_an_embedded_postgresql_when_nothing_answers():
    result = wrapper("--server", NOWHERE, "--fallback")
    assert result.returncode == 0, result.stderr
    url, name = result.stdout.splitlines()
    assert name.startswith("stepfunction_test_")
    # pgserver's, on a Unix socket in its data directory, removed once stopped.
    socket_directory = Path(make_url(url).query["host"])
    assert "stepfunction-postgresql-" in str(socket_directory)
    assert not socket_directory.exists()
    assert "no PostgreSQL at postgresql://postgres@127.0.0.1:1/" in result.stderr
    assert "embedded PostgreSQL started in" in result.stderr


def test_a_server_asked_for_by_name_must_answer():
    result = wrapper("--server", NOWHERE)
    assert result.returncode == 2
    assert result.stdout == ""  # the command never ran
    assert "no PostgreSQL answers at postgresql://postgres@127.0.0.1:1/" in result.stderr
