"""sync.schemas.unstorable against the plain walk it replaced (a stack of (value, path,
depth)), on generated JSON values: the same place and reason for every input, the
faster version builds the path only for the place it reports."""

from __future__ import annotations

import math
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from sync.schemas import _BAD_CHARS, BIGINT_MAX, MAX_DEPTH, unstorable


def _printable(key: Any) -> str:
    return _BAD_CHARS.sub("\ufffd", str(key))[:64]


def reference(value: Any, path: str = "") -> tuple[str, str] | None:
    stack: list[tuple[Any, str, int]] = [(value, path, 0)]
    while stack:
        item, where, depth = stack.pop()
        if depth > MAX_DEPTH:
            return where, f"nested deeper than {MAX_DEPTH} levels"
        if isinstance(item, str):
            bad = _BAD_CHARS.search(item)
            if bad:
                what = "a NUL character" if bad.group() == "\x00" else "a lone surrogate"
                return where, f"contains {what} at position {bad.start()}"
        elif isinstance(item, dict):
            for key, inner in item.items():
                here = f"{where}.{_printable(key)}" if where else _printable(key)
                if _BAD_CHARS.search(str(key)):
                    return here, "the key contains a NUL character or a lone surrogate"
                stack.append((inner, here, depth + 1))
        elif isinstance(item, list):
            stack.extend((inner, f"{where}[{i}]", depth + 1) for i, inner in enumerate(item))
        elif isinstance(item, bool) or item is None:
            continue
        elif isinstance(item, int) and abs(item) > BIGINT_MAX:
            return where, "the number is too large"
        elif isinstance(item, float) and not math.isfinite(item):
            return where, "the number is not finite"
    return None


_text = st.text(alphabet=st.sampled_from(list("ab中.[\x00\ud800\udfff")), max_size=4)
_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**64), max_value=2**64)
    | st.floats()
    | _text
)
_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_text, inner, max_size=4),
    max_leaves=40,
)


@settings(max_examples=3000, deadline=None)
@given(_values, st.sampled_from(["", "fields"]))
def test_same_answer_as_the_plain_walk(value, path):
    assert unstorable(value, path) == reference(value, path)


def test_depth_limit_on_every_kind_of_leaf():
    for leaf in ("x", "\x00", 1, 2**70, None, math.inf):
        for n in range(MAX_DEPTH + 3):
            value: Any = leaf
            for i in range(n):
                value = [value] if i % 2 else {"k": value}
            assert unstorable(value) == reference(value), (leaf, n)
