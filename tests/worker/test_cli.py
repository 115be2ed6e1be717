"""Finding 8: ``stepfunction-worker`` with a missing or unreadable .ini exits 2 with one line.

It printed a raw traceback. Like argparse for a bad argument: ``stepfunction-worker: error:
…`` on stderr, exit code 2, nothing else.
"""

import subprocess
import sys
from pathlib import Path

import pytest


WORKER_BIN = str(Path(sys.executable).with_name("stepfunction-worker"))


def bad_config(tmp_path, kind):
    path = tmp_path / "kinto.ini"
    if kind == "directory":
        path.mkdir()
    elif kind == "syntax":
        path.write_text("[app:main]\nnot a setting\n")
    elif kind == "no-app-section":
        path.write_text("[server:main]\nport = 8888\n")
    elif kind == "encoding":
        path.write_bytes(b"[app:main]\nuse = egg:kinto\nkinto.x = \xff\xfe\n")
    return path  # "missing": never written


@pytest.mark.parametrize("kind", ["missing", "directory", "syntax", "no-app-section", "encoding"])
def test_stepfunction_worker_with_a_bad_ini_exits_2_with_one_line(tmp_path, kind):
    path = bad_config(tmp_path, kind)
    result = subprocess.run([WORKER_BIN, str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("stepfunction-worker: error: "), result.stderr
    assert str(path) in lines[0]
