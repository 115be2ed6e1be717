"""How deep a JSON value nests: bounded, so that no hostile or odd value reaches code that
recurses (Python's json, copies, validators), where it would be a 500 or a crashed loop."""

# Objects and arrays nested at most, in an execution's input or output the plugin stores.
MAX_DEPTH = 100


def too_deep(value, limit=MAX_DEPTH):
    """Whether ``value`` nests objects and arrays more than ``limit`` levels (no recursion)."""
    stack = [(value, 0)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict | list):
            if depth >= limit:
                return True
            children = value.values() if isinstance(value, dict) else value
            stack.extend((child, depth + 1) for child in children)
    return False
