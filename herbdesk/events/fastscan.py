"""The compiled line scanner (events/_scan.c), when it was built; bulk folds use it if present.

A `BlockScanner` turns each block of whole log lines of one load into columns, one value per
line, in C and without the GIL (a read-ahead thread scans while the fold runs). `KIND_OTHER`
lines are everything the scanner is not sure of: the fold takes them through the general
Python path. Without a C compiler at install time the module is absent and every line takes
the Python path; `HERBDESK_NO_SCAN=1` forces that (tests compare both).
"""

from __future__ import annotations

import mmap
import os
from collections.abc import Sequence
from types import ModuleType

import numpy as np

_scan: ModuleType | None
try:
    from herbdesk.events import _scan  # type: ignore[attr-defined, no-redef]
except ImportError:  # not built (no compiler): the Python path does the same, slower
    _scan = None

KIND_BLANK, KIND_QUEUED, KIND_PROCESSING, KIND_COMPLETED, KIND_FAILED = range(5)
KIND_OTHER = 255
TS_NONE, TS_EPOCH, TS_PYTHON = range(3)
SUCCESS_FALSE, SUCCESS_TRUE, SUCCESS_NONE = range(3)
# numbers the scanner left to Python (see field_float in _scan.c): read from the line
FIX_CONF, FIX_TIME, FIX_COST = 1, 2, 4
MISSING = np.iinfo(np.int64).min  # an integer field absent or null

# The column order of Scanner.scan's output in _scan.c, group by group.
I32 = (
    "start", "len", "ts_off", "ts_len", "run_off", "run_len", "sid_off", "sid_len",
    "image_off", "image_len", "path_off", "path_len", "error_off", "error_len",
    "metrics_off", "metrics_len", "quality_off", "quality_len", "dwc_off", "dwc_len",
)  # fmt: skip
I64 = ("seq", "sequence", "fields", "attempts", "tokens", "prov", "qkey", "qfp")
F64 = ("conf", "time_ms", "cost", "epoch")
U8 = ("kind", "success", "ts_kind", "fix", "qhas")  # fix: FIX_* bits
_GROUPS = ((I32, np.dtype(np.int32)), (I64, np.dtype(np.int64)), (F64, np.dtype(np.float64)),
           (U8, np.dtype(np.uint8)))  # fmt: skip
ALL = I32 + I64 + F64 + U8
ROW_BYTES = sum(len(names) * dt.itemsize for names, dt in _GROUPS)

AVAILABLE = (
    _scan is not None and ROW_BYTES == _scan.ROW_BYTES and not os.environ.get("HERBDESK_NO_SCAN")
)


class Columns:
    """A scanned block (or a selection of its lines): one numpy column per field.

    Spans (`*_off`, `*_len`) point into the block; a length of -1 means absent or null.
    """

    n: int
    start: np.ndarray
    len: np.ndarray
    ts_off: np.ndarray
    ts_len: np.ndarray
    run_off: np.ndarray
    run_len: np.ndarray
    sid_off: np.ndarray
    sid_len: np.ndarray
    image_off: np.ndarray
    image_len: np.ndarray
    path_off: np.ndarray
    path_len: np.ndarray
    error_off: np.ndarray
    error_len: np.ndarray
    metrics_off: np.ndarray
    metrics_len: np.ndarray
    quality_off: np.ndarray
    quality_len: np.ndarray
    dwc_off: np.ndarray  # data.dwc, the record's {term: value} (an object, or absent/null)
    dwc_len: np.ndarray
    seq: np.ndarray
    sequence: np.ndarray
    fields: np.ndarray
    attempts: np.ndarray
    tokens: np.ndarray
    prov: np.ndarray
    qkey: np.ndarray  # the quality object's key number (Scanner), -1 none, -2 read it in full
    qfp: np.ndarray  # its fingerprint's 64 bits (qhas: it has one)
    conf: np.ndarray
    time_ms: np.ndarray
    cost: np.ndarray
    epoch: np.ndarray
    kind: np.ndarray
    success: np.ndarray
    ts_kind: np.ndarray
    fix: np.ndarray
    qhas: np.ndarray

    @classmethod
    def from_bytes(cls, n: int, raw: bytearray) -> Columns:
        cols = cls()
        cols.n = n
        offset = 0
        for names, dt in _GROUPS:
            for name in names:
                setattr(cols, name, np.frombuffer(raw, dt, n, offset))
                offset += n * dt.itemsize
        return cols

    def take(self, sel: slice | np.ndarray, names: Sequence[str] | None = None) -> Columns:
        """The selected lines (a slice gives views, an index array copies); only the columns
        `names` if given (copying all thirty for a subset is a cost on a big load)."""
        cols = Columns()
        for name in names if names is not None else ALL:
            setattr(cols, name, getattr(self, name)[sel])
        cols.n = len(range(self.n)[sel]) if isinstance(sel, slice) else len(sel)
        return cols

    def __len__(self) -> int:
        return self.n

    def text(self, block: bytes | bytearray, name: str, i: int) -> str:
        """The span `name` of line i as text ("" if absent)."""
        off, ln = int(getattr(self, f"{name}_off")[i]), int(getattr(self, f"{name}_len")[i])
        return block[off : off + ln].decode("ascii") if ln > 0 else ""


class BlockScanner:
    """Scans the blocks of one load, in order, for one RunState.

    Specimen ids get provisional numbers in the scanner (by hash, first appearance order);
    the fold keeps what it learns beside them: `prov_rows` maps numbers to the state's rows
    (-1 not yet known, -2 shared by several ids), `has_image`/`has_path` mark rows known to
    hold one already, `quality_kinds` maps the scanner's quality key numbers to the state's
    QualityTally kinds (-1: read the object in full). `hash_bits` below 64 forces hash
    collisions (tests).
    """

    def __init__(self, hash_bits: int = 64) -> None:
        assert _scan is not None
        self._scanner = _scan.Scanner(hash_bits)
        self.prov_rows = np.full(0, -1, np.int64)
        self.has_image = np.zeros(0, bool)
        self.has_path = np.zeros(0, bool)
        self.quality_kinds = np.zeros(0, np.int32)

    def scan(self, block: bytes | bytearray, length: int = -1) -> Columns:
        """The lines of `block` (of its first `length` bytes if given) as columns."""
        n, raw = self._scanner.scan(block, length)
        return Columns.from_bytes(n, raw)

    def rows_table(self, size: int) -> np.ndarray:
        """`prov_rows`, grown to hold at least `size` numbers."""
        if len(self.prov_rows) < size:
            self.prov_rows = _grown(self.prov_rows, size, -1)
        return self.prov_rows

    def known(self, rows: int) -> tuple[np.ndarray, np.ndarray]:
        """`has_image` and `has_path`, grown to `rows` rows."""
        if len(self.has_image) < rows:
            self.has_image = _grown(self.has_image, rows, False)
            self.has_path = _grown(self.has_path, rows, False)
        return self.has_image, self.has_path

    def quality_keys(self, start: int) -> list[bytes]:
        """The scanner's quality keys from number `start` on (each an object as JSON)."""
        keys: list[bytes] = self._scanner.quality_keys(start)
        return keys


def _grown(a: np.ndarray, size: int, fill: object) -> np.ndarray:
    out = np.full(max(size, 2 * len(a)), fill, a.dtype)
    out[: len(a)] = a
    return out


def verify(
    block: bytes | bytearray,
    offsets: np.ndarray,
    lengths: np.ndarray,
    rows: np.ndarray,
    keys: list[str],
) -> np.ndarray:
    """True where `keys[row]` is exactly the span's id (False for rows < 0)."""
    assert _scan is not None
    ok = _scan.verify(
        block,
        np.ascontiguousarray(offsets, np.int64),
        np.ascontiguousarray(lengths, np.int64),
        np.ascontiguousarray(rows, np.int64),
        keys,
    )
    return np.frombuffer(ok, np.bool_)


def rows(
    block: bytes | bytearray,
    offsets: np.ndarray,
    lengths: np.ndarray,
    row_of: dict[str, int],
    keys: list[str],
) -> tuple[np.ndarray, int]:
    """Each span's row in `row_of`; unseen ids get the next rows and join `keys` (in order)."""
    assert _scan is not None
    out = np.empty(len(offsets), np.int64)
    added = _scan.rows(
        block,
        np.ascontiguousarray(offsets, np.int64),
        np.ascontiguousarray(lengths, np.int64),
        row_of,
        keys,
        out,
    )
    return out, int(added)


def lookup(
    block: bytes | bytearray,
    offsets: np.ndarray,
    lengths: np.ndarray,
    row_of: dict[str, int],
    keys: list[str],
) -> np.ndarray:
    """`rows` for distinct ids, leaving `row_of` as it is: new ids only join `keys`."""
    assert _scan is not None
    out = np.empty(len(offsets), np.int64)
    _scan.rows(block, _i64(offsets), _i64(lengths), row_of, keys, out, False)
    return out


def same(
    block: bytes | bytearray, off1: np.ndarray, len1: np.ndarray, off2: np.ndarray, len2: np.ndarray
) -> np.ndarray:
    """True where the two spans of `block` hold the same bytes."""
    assert _scan is not None
    eq = _scan.same(block, _i64(off1), _i64(len1), _i64(off2), _i64(len2))
    return np.frombuffer(eq, np.bool_)


def _i64(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, np.int64)


def strings(block: bytes | bytearray, offsets: np.ndarray, lengths: np.ndarray) -> list[str]:
    """The spans as str ("" for an absent one)."""
    assert _scan is not None
    result: list[str] = _scan.strings(
        block, np.ascontiguousarray(offsets, np.int64), np.ascontiguousarray(lengths, np.int64)
    )
    return result


def value_columns(
    block: bytes | bytearray | memoryview | mmap.mmap, offsets: np.ndarray, lengths: np.ndarray
) -> tuple[list[tuple[bytes, np.ndarray, list[str | bytes]]], np.ndarray]:
    """Records' flat `dwc` objects (spans of `block`) as categorical columns, no Python object
    per value (dwc_columns in _scan.c): per distinct key (raw bytes), an int32 code per span
    (0: absent, c: the key's value c - 1) and its distinct values (a plain string as str,
    any other value as raw JSON bytes); and a bool per span that the caller must read itself
    (not such an object)."""
    assert _scan is not None
    cols, odd = _scan.dwc_columns(block, _i64(offsets), _i64(lengths))
    return (
        [(key, np.frombuffer(codes, np.int32), values) for key, codes, values in cols],
        np.frombuffer(odd, np.bool_),
    )
