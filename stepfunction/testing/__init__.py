"""A local AWS Step Functions (moto 5.2.5 completed with activities) for tests and demos, and
what the tests need on any machine: a PostgreSQL database of their own
(:mod:`stepfunction.testing.postgresql`) and a Chromium (:mod:`stepfunction.testing.browser`).

The emulator is imported on first use: importing moto takes seconds, which the command-line
helpers of this package (``python -m stepfunction.testing.postgresql``) need not pay.
"""

import importlib


EMULATOR = ("DEFAULT_POLL_SECONDS", "POLL_SECONDS_ENV", "Emulator", "install", "preload")
__all__ = [*EMULATOR, "Workflows"]


def __getattr__(name: str):
    if name == "Workflows":  # test workflows on the emulator, shared with the benchmarks
        return importlib.import_module("stepfunction.testing.workflows").Workflows
    if name in EMULATOR:
        return getattr(importlib.import_module("stepfunction.testing.emulator"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
