"""Percentiles, batches of timed operations, and ratios."""

from typing import NamedTuple


def percentile(values, q):
    """The q-th percentile (0-100) of ``values``, interpolated between the closest ranks."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


class Batch(NamedTuple):
    """The latencies (seconds) of one batch, and its wall time from first start to last end."""

    latencies: list
    wall: float


class Summary(NamedTuple):
    count: int
    p50: float  # seconds
    p95: float
    throughput: float  # operations per second of batch wall time

    @classmethod
    def of(cls, batches):
        latencies = [x for batch in batches for x in batch.latencies]
        wall = sum(batch.wall for batch in batches)
        throughput = len(latencies) / wall if wall > 0 else float("nan")
        return cls(
            len(latencies), percentile(latencies, 50), percentile(latencies, 95), throughput
        )


def ratio(value, baseline):
    if not baseline or baseline != baseline or value != value:
        return float("nan")
    return value / baseline


def verdict(value, *, at_most=None, at_least=None, digits=2):
    """PASS or FAIL for ``value`` as printed (rounded to ``digits``)."""
    if value != value:  # NaN: nothing measured
        return "n/a"
    value = round(value, digits)
    if at_most is not None:
        return "PASS" if value <= at_most else "FAIL"
    return "PASS" if value >= at_least else "FAIL"
