"""Task tokens masked wherever a record carries them: pure functions, no I/O.

A state machine may pass its task token inside the data it describes (``"taskToken.$":
"$$.Task.Token"`` in a callback's payload, or an activity's ``Parameters``): the step's token
is then masked in every value and every key, at any depth, and inside longer strings, before
anything stores the record.
"""

from stepfunction.schema import TOKEN_MASK, valid_token


def scrub(value, tokens):
    """``value`` (JSON: dicts, lists, strings, numbers…) with every occurrence of each of
    ``tokens`` replaced by ``TOKEN_MASK``, in values and in keys, at any depth.

    A token longer than the mask is masked inside longer strings too; a shorter one (no AWS
    token is) only where a whole string is that token, so that scrubbing twice changes
    nothing. Returns a new value, ``value`` is left as it is; iterative, for any depth.
    """
    tokens = sorted({t for t in tokens if valid_token(t)}, key=len, reverse=True)
    if not tokens:
        return value
    root = [value]
    stack = [(root, 0)]
    while stack:
        container, key = stack.pop()
        item = container[key]
        if isinstance(item, str):
            container[key] = _mask(item, tokens)
        elif isinstance(item, dict):
            copy = {}
            for name, child in item.items():
                copy[_mask(name, tokens) if isinstance(name, str) else name] = child
            container[key] = copy
            stack.extend((copy, name) for name in copy)
        elif isinstance(item, list):
            copy = list(item)
            container[key] = copy
            stack.extend((copy, index) for index in range(len(copy)))
    return root[0]


def holds(value, tokens):
    """Whether ``value`` carries any of ``tokens`` (as ``scrub`` would find them)."""
    return scrub(value, tokens) != value


def _mask(text, tokens):
    for token in tokens:
        if len(token) > len(TOKEN_MASK):
            text = text.replace(token, TOKEN_MASK)
        elif text == token:
            return TOKEN_MASK
    return text
