"""File names that are not valid UTF-8, as valid UTF-8 text for the run files.

Linux names are bytes; Python hands an undecodable byte over as a lone surrogate
(surrogateescape, U+DC80..U+DCFF), which orjson and a UTF-8 file refuse. Every run file
writes such a byte as `\\xNN` (backslash, x, two hex digits: Python's backslashreplace), a
form that is valid UTF-8, readable and reversible (`fs_unescape`). Any other lone surrogate
becomes `\\uXXXX`. Valid text is left exactly as it is.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

_ESCAPED_BYTE = re.compile(r"\\x([89a-fA-F][0-9a-fA-F])")


def fs_text(text: str) -> str:
    """`text` with each undecodable file-name byte as `\\xNN` (identity on valid text)."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        pass
    try:
        raw = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a surrogate that stands for no byte
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return raw.decode("utf-8", "backslashreplace")


def fs_unescape(text: str) -> str:
    """The file name `fs_text` wrote (`\\xNN` for bytes 0x80-0xFF back to the raw byte)."""
    return _ESCAPED_BYTE.sub(lambda m: chr(0xDC00 + int(m.group(1), 16)), text)


def json_safe(obj: Any) -> Any:
    """`obj` if orjson can encode it, else a copy with every string passed through fs_text."""
    try:
        orjson.dumps(obj)
        return obj
    except TypeError:
        return _escaped(obj)


def _escaped(obj: Any) -> Any:
    if isinstance(obj, str):
        return fs_text(obj)
    if isinstance(obj, dict):
        return {fs_text(k) if isinstance(k, str) else k: _escaped(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_escaped(v) for v in obj]
    return obj
