"""Kinto's timestamp race: two writes in one collection may pick the same
``last_modified``. A write the plugin tries again logs Kinto's ERROR at DEBUG."""

import contextlib
import logging
import threading

from kinto.core.storage.exceptions import IntegrityError


logger = logging.getLogger(__name__)


# Kinto logs, at ERROR, the IntegrityError of its timestamp race before raising it; the
# plugin tries such a write again, and says so itself (at ERROR) only once it gives up.
_RETRYING = threading.local()
RACE_LOGGER = "kinto.core.storage.postgresql.client"


class _RaceFilter(logging.Filter):
    def filter(self, record):
        if getattr(_RETRYING, "active", False) and record.levelno >= logging.ERROR:
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            record.exc_info = record.exc_text = None
            return logging.getLogger(RACE_LOGGER).isEnabledFor(logging.DEBUG)
        return True


logging.getLogger(RACE_LOGGER).addFilter(_RaceFilter())


@contextlib.contextmanager
def retried_race(attempt=0):
    """Kinto's ERROR for a write about to be tried again is logged at DEBUG instead."""
    previous = getattr(_RETRYING, "active", False)
    _RETRYING.active = True
    try:
        yield
    except IntegrityError:
        logger.debug("Kinto's timestamp race (attempt %d): trying again", attempt + 1)
        raise
    finally:
        _RETRYING.active = previous
