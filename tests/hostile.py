"""Values a hostile client puts into JSON: numbers past a double, non-finite floats, lone surrogates, deep
nesting; and JSON text that carries them as a client can write them."""

import json

from hypothesis import strategies as st


class Raw(str):
    """A number token written into the JSON text as it is (1e999, 10**30), which json.dumps cannot make."""


def hostile_json(value) -> str:
    """JSON text of `value`, Raw tokens included; lone surrogates and non-finite floats go out as JSON allows
    them to be written (\\ud800 escapes; NaN and Infinity, which the host must refuse)."""
    marks: dict[str, str] = {}

    def mark(v):
        if isinstance(v, Raw):
            marks[f"RAW{len(marks)}"] = str(v)
            return f"RAW{len(marks) - 1}"
        if isinstance(v, list):
            return [mark(x) for x in v]
        if isinstance(v, dict):
            return {k: mark(x) for k, x in v.items()}
        return v

    text = json.dumps(mark(value))
    for key, token in marks.items():
        text = text.replace(f'"{key}"', token)
    return text


def nested(depth: int, leaf):
    for _ in range(depth):
        leaf = [leaf]
    return leaf


HOSTILE = st.one_of(
    st.integers(min_value=-(10**40), max_value=10**40),
    st.sampled_from([Raw("1e999"), Raw("-1e999"), Raw("1e308"), Raw("9" * 400), Raw("-0.0"), Raw("2e-400")]),
    st.floats(),  # inf and nan among them
    st.text(alphabet=st.characters(categories=["Cs", "Lu", "Cc", "So"]), max_size=8),
    st.builds(nested, st.integers(1, 300), st.integers()),
    st.dictionaries(st.text(alphabet=st.characters(categories=["Cs", "Ll"]), max_size=3), st.integers(), max_size=2),
)

# Text holding a NUL, as JSON carries it (\u0000): SQLite keeps it, PostgreSQL's text type refuses it outright (a
# DataError), so wherever a host stores such text as it came, only its PostgreSQL variant fails.
NUL_TEXT = "a\x00b"
