"""Hypothesis strategies for hostile input, shared by the fuzz tests of the API, the webhook and the checkout.

Each fuzz test states its example count (FUZZ_EXAMPLES below) so the whole suite's time stays predictable;
no example database is kept, so every run explores afresh rather than replaying a growing corpus.
"""

from __future__ import annotations

import json
from urllib.parse import quote_from_bytes

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

# Examples per fuzz test. Together they add about a minute to the suite on two cores.
FUZZ_EXAMPLES = {
    "api_rows": 150,
    "api_raw_body": 100,
    "webhook_signed": 100,
    "webhook_unsigned": 100,
    "checkout_row": 100,
    "paste": 60,
    "csv_upload": 60,
}


def fuzz_settings(name: str):
    # Django's test client and the database fixture are shared by the examples of one test on purpose: each
    # example compares the database before and after its own request.
    return settings(
        max_examples=FUZZ_EXAMPLES[name],
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
    )


# Characters that broke things, or might: NUL, lone surrogates, right-to-left marks and overrides, a BOM, digits
# that str.isdigit() accepts and int() does not, fullwidth digits, brackets and quotes.
NASTY_CHARACTERS = [
    "\x00",
    "\ud800",
    "\udbff",
    "\udc00",
    "\udfff",
    "\u200f",
    "\u202e",
    "\u2066",
    "\ufeff",
    "²",
    "٣",
    "\uff19",
    "[",
    "{",
    '"',
    "\\",
    ",",
    "\n",
    "\r",
    "\t",
    " ",
    "é",
    "号",
]

PLAUSIBLE = [
    "",
    " ",
    "POSTER-A2",
    "TSHIRT-M",
    "GAME-GOLD-60",
    "user-123456",
    "13800138000",
    "+86 138 0013 8000",
    "50",
    "2",
    "PO-1",
]
# A value that would pass, with one hostile character slipped in somewhere: reaches the checks behind the first.
spiked = st.builds(
    lambda value, character, position: value[:position] + character + value[position:],
    st.sampled_from(PLAUSIBLE),
    st.sampled_from(NASTY_CHARACTERS),
    st.integers(0, 20),
)
texts = st.one_of(
    spiked,
    st.text(max_size=30),
    st.text(alphabet=st.sampled_from(NASTY_CHARACTERS) | st.characters(), max_size=30),
    st.sampled_from(PLAUSIBLE),
    st.builds(lambda digits, sign: sign + "9" * digits, st.integers(0, 6000), st.sampled_from(["", "-", "+"])),
    st.sampled_from(["1e400", "1e999", "-0", "NaN", "Infinity", "0x10", "1_000", "5E1", ".5", "50.00", "1e-400"]),
)
form_texts = texts.map(lambda text: text.encode("utf-8", "surrogatepass").decode("utf-8", "replace"))

numbers = st.one_of(
    st.integers(),
    st.integers(min_value=-(10**60), max_value=10**60),
    st.floats(allow_nan=True, allow_infinity=True),
    st.decimals(allow_nan=False, allow_infinity=False).map(float),
)

scalars = st.one_of(st.none(), st.booleans(), numbers, texts)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(texts, children, max_size=4),
    max_leaves=12,
)


def deep(depth: int, opener: str = "[") -> str:
    closer = {"[": "]", "{": "}"}[opener]
    if opener == "{":
        return '{"a":' * depth + "1" + closer * depth
    return opener * depth + closer * depth


deep_documents = st.builds(deep, st.integers(min_value=20, max_value=3000), st.sampled_from(["[", "{"]))

ROW_FIELDS = ["kind", "sku", "quantity", "phone", "face_value", "account", "reference"]
rows = st.one_of(
    st.fixed_dictionaries(
        {"kind": st.sampled_from(["goods", "mobile", "game"]) | texts},
        optional={field: st.one_of(texts, numbers, json_values) for field in ROW_FIELDS[1:]},
    ),
    st.dictionaries(texts, json_values, max_size=4),
    json_values,
)


def dumps(value) -> str:
    # ensure_ascii keeps lone surrogates as \ud800 escapes, exactly as a client would send them.
    return json.dumps(value, ensure_ascii=True, allow_nan=True)


raw_bodies = st.one_of(
    st.binary(max_size=200),
    deep_documents.map(str.encode),
    st.builds(lambda inner: ('{"rows": [' + inner + "]}").encode(), deep_documents),
    st.builds(
        lambda digits: ('{"rows": [{"kind": "goods", "quantity": ' + "9" * digits + "}]}").encode(),
        st.integers(1, 6000),
    ),
    json_values.map(lambda value: dumps(value).encode()),
)


def urlencoded(fields: dict[str, bytes]) -> bytes:
    """A form body from raw bytes, so that invalid UTF-8 reaches the server as a browser could send it."""
    return b"&".join(
        quote_from_bytes(name.encode()).encode() + b"=" + quote_from_bytes(value).encode()
        for name, value in fields.items()
    )


form_values = st.one_of(form_texts.map(lambda text: text.encode("utf-8")), st.binary(max_size=40))
