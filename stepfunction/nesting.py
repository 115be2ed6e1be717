"""What a JSON value holds that would fail after its execution started: nesting deeper than
Python's own tools recurse (json, copies, validators: a 500, or a crashed loop), and the NUL
character, which PostgreSQL's JSONB can't store. Checked before StartExecution, iteratively."""

# Objects and arrays nested at most, in an execution's input or output the plugin stores.
MAX_DEPTH = 100
NUL = "\u0000"


def _walk(value):
    """``(item, depth)`` of every value, key and container in ``value``, without recursion."""
    stack = [(value, 0)]
    while stack:
        value, depth = stack.pop()
        yield value, depth
        if isinstance(value, dict):
            stack.extend((key, depth + 1) for key in value)
            stack.extend((child, depth + 1) for child in value.values())
        elif isinstance(value, list):
            stack.extend((child, depth + 1) for child in value)


def too_deep(value, limit=MAX_DEPTH):
    """Whether ``value`` nests objects and arrays more than ``limit`` levels."""
    return any(isinstance(v, dict | list) and d >= limit for v, d in _walk(value))


def holds_nul(value):
    """Whether a string of ``value`` (a key or a value, at any depth) holds a NUL character."""
    return any(isinstance(v, str) and NUL in v for v, _ in _walk(value))
