"""A local AWS Step Functions (moto 5.2.5 completed with activities) for tests and demos."""

from stepfunction.testing.emulator import (
    DEFAULT_POLL_SECONDS,
    POLL_SECONDS_ENV,
    Emulator,
    install,
    preload,
)


__all__ = ["DEFAULT_POLL_SECONDS", "POLL_SECONDS_ENV", "Emulator", "install", "preload"]
