"""Text from outside made safe for a terminal: the one place it is cleaned.

Server errors, model replies, log contents and file names are printed by `run`, `summary` and
`tail`. Printed raw, an escape sequence in them would retitle the window (OSC 0), disguise a
link (OSC 8), clear the screen (CSI), or ask the terminal a question whose answer it types back
as input (DECRQSS, CSI 6n); a bidi override would make text read in another order than it is.
Every such text goes through `clean_text` before it is printed; JSON output goes through
`json_safe`, which escapes what JSON allows raw but a terminal obeys.
"""

from __future__ import annotations

import re

# Whole sequences go, not just their ESC: what follows an ESC is the sequence's payload (a
# title, a URL), not text. CSI runs to its final byte; OSC, DCS, SOS, PM and APC strings run
# to their terminator (BEL, ESC \ or ST) or, unterminated, to the next ESC or the end; any
# other ESC takes its intermediates and final byte (ESC c resets the terminal).
_SEQUENCE = re.compile(
    r"(?:\x1b\[|\x9b)[\x30-\x3f]*[\x20-\x2f]*[\x40-\x7e]?"
    r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
    r"|\x1b[\x20-\x2f]*[\x30-\x7e]?"
)
_BIDI = "\u202a-\u202e\u2066-\u2069"  # embeddings, overrides and isolates
_CONTROL = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f{_BIDI}]")  # C0 but tab and newline, C1
_SURROGATE = re.compile("[\ud800-\udfff]")  # a lone one cannot even be encoded for output
_ONE_LINE = str.maketrans({"\n": " ", "\t": " "})
MARK = "?"  # what stands where a sequence or a control was: the text was altered here

# In UTF-8 JSON output (orjson writes DEL and non-ASCII raw): DEL, C1 controls and bidi
# characters, as bytes. Lead bytes never occur inside another character: a byte match is exact.
_JSON_UNSAFE = re.compile(rb"\x7f|\xc2[\x80-\x9f]|\xe2\x80[\xaa-\xae]|\xe2\x81[\xa6-\xa9]")


def clean_text(value: object, *, multiline: bool = False, limit: int | None = None) -> str:
    """`value` as text a terminal shows without obeying any of it.

    Escape sequences and control characters become `MARK`; newline and tab are kept only
    where the output is `multiline` (elsewhere a newline could fake a line of output), else
    they become spaces. `limit` cuts to that many characters, ending in an ellipsis.
    """
    text = value if isinstance(value, str) else str(value)
    text = text.replace("\r\n", "\n")
    text = _SEQUENCE.sub(MARK, text)
    if not multiline:
        text = text.translate(_ONE_LINE)
    text = _CONTROL.sub(MARK, text)
    text = _SURROGATE.sub("\ufffd", text)
    if limit is not None and len(text) > limit:
        text = text[: max(0, limit - 1)] + "…"
    return text


def json_safe(data: bytes) -> bytes:
    """UTF-8 JSON with DEL, C1 controls and bidi characters written as `\\uXXXX` escapes.

    They only occur inside JSON strings, where the escape means the same character.
    """
    return _JSON_UNSAFE.sub(lambda m: b"\\u%04x" % ord(m.group().decode()), data)
