"""The fold of scanned specimen lines in columns (numpy), for bulk loads.

`RunState.apply` folds one event at a time; on a million-line log that Python loop is most of
the cost. A run of consecutive scanned lines (events/fastscan.py: queued, processing,
completed, failed, each with a specimen id) gives the same state folded in whole columns:
the sequential rules ("the last status wins", "the first image found is kept", running sums
and the rolling success rate) become last/first occurrences per row and cumulative sums.
Sums run in line order (`np.cumsum` adds one value at a time), so even the floating-point
totals match the one-at-a-time fold to the last bit; tests/test_fastscan.py checks that
every field of the state agrees with the general path on random logs.
"""

from __future__ import annotations

import operator
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson

from herbdesk.events import fastscan
from herbdesk.events.fastscan import (
    FIX_CONF,
    FIX_COST,
    FIX_TIME,
    KIND_COMPLETED,
    KIND_PROCESSING,
    MISSING,
    SUCCESS_FALSE,
    TS_EPOCH,
    TS_PYTHON,
)
from herbdesk.events.types import EventType, parse_ts
from herbdesk.monitor.metrics import ROLLING_WINDOW
from herbdesk.runstate.state import (
    STATUS_COMPLETED,
    STATUS_FAILED,
    STATUS_PROCESSING,
    STATUS_QUEUED,
    RunState,
    judged,
)
from herbdesk.runstate.terms import fold_spans
from herbdesk.runstate.values import error_text, num

if TYPE_CHECKING:
    from herbdesk.events.fastscan import BlockScanner, Columns

TYPE_NAMES = (
    "",
    EventType.SPECIMEN_QUEUED,
    EventType.SPECIMEN_PROCESSING,
    EventType.SPECIMEN_COMPLETED,
    EventType.SPECIMEN_FAILED,
)
_EXACT = 2**53
# the columns a finish reads (the first eight: what the row keeps of its last finish)
FINISH_FIELDS = (
    "conf", "time_ms", "cost", "sequence", "fields", "attempts", "error_off", "error_len",
    "tokens", "epoch", "ts_kind", "ts_off", "ts_len", "quality_off", "quality_len", "qkey", "qfp",
    "qhas", "dwc_off", "dwc_len",
)  # fmt: skip
# below this a segment's lines are folded one by one: the column fold's fixed cost (a few
# dozen numpy calls) only pays off over many lines
MIN_SEGMENT = 48


def _last_per_row(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct rows and, for each, the index of its last occurrence in `rows`."""
    uniq, first_from_end = np.unique(rows[::-1], return_index=True)
    return uniq, len(rows) - 1 - first_from_end


def _assign(column: list[Any], rows: np.ndarray, values: list[Any]) -> None:
    """column[rows[i]] = values[i] for sorted distinct rows; one slice when they are a range
    (finished specimens mostly are: a tenth of the cost of item by item)."""
    if not len(rows):
        return
    first, last = int(rows[0]), int(rows[-1])
    if last - first + 1 == len(rows):
        column[first : last + 1] = values
    else:
        deque(map(column.__setitem__, rows.tolist(), values), maxlen=0)


def _gather(column: list[Any], rows: np.ndarray) -> list[Any]:
    """[column[r] for r in rows] for sorted distinct rows (one slice for a range)."""
    if len(rows) and int(rows[-1]) - int(rows[0]) + 1 == len(rows):
        return column[int(rows[0]) : int(rows[-1]) + 1]
    return list(map(column.__getitem__, rows.tolist()))


def _counts(values: np.ndarray) -> np.ndarray:
    """`values.count` of an int64 column: absent, null or past 2**53 count as 0, except +-(2**53+1),
    which `float()` rounds to +-2**53 (kept, as `values.count` keeps it)."""
    out = np.where((values >= -_EXACT) & (values <= _EXACT), values, 0)  # MISSING is below
    out[values == _EXACT + 1] = _EXACT
    out[values == -_EXACT - 1] = -_EXACT
    return out


def _int_sum(values: np.ndarray) -> int:
    """Exact sum (values are within 2**53; many of them could overflow int64)."""
    if len(values) == 0:
        return 0
    if int(np.abs(values).max()) < 2**40:
        return int(values.sum())
    return sum(values.tolist())


def _seq_sum(start: float, values: np.ndarray) -> float:
    """start + v0 + v1 + ... added left to right, as the one-at-a-time fold does."""
    if len(values) == 0:
        return start
    return float(np.cumsum(np.concatenate(([start], values)))[-1])


def fold_records(
    state: RunState,
    block: bytes | bytearray,
    recs: Columns,
    scanner: BlockScanner,
    base: int = 0,
) -> None:
    """Fold consecutive scanned specimen lines (kinds 1-4) of `block` into `state`; `block`
    is the log from byte `base` (where the term values are kept, runstate/terms.py)."""
    kind = recs.kind
    _header(state, block, recs)
    _read_left_numbers(block, recs)

    n0 = len(state.specimen_id)
    rows = _rows(state, block, recs, scanner)
    added = len(state.specimen_id) - n0
    if added:
        state.image.extend([""] * added)
        state.path.extend([""] * added)
        state.row_status.extend([STATUS_QUEUED] * added)
        state.sequence.extend([None] * added)
        state.fields_extracted.extend([0] * added)
        nan = np.full(added, np.nan).tobytes()
        for col in (state.confidence, state.time_ms, state.cost_usd):
            col.frombytes(nan)
        state.error.extend([""] * added)
        state.attempts.extend([0] * added)
    has_image, has_path = scanner.known(len(state.specimen_id))
    _fill_first(block, recs.image_off, recs.image_len, rows, state.image, has_image)
    _fill_first(block, recs.path_off, recs.path_len, rows, state.path, has_path)

    # statuses: the last status-setting line of each row wins
    sets = np.flatnonzero(kind >= KIND_PROCESSING)
    finished = np.flatnonzero(kind >= KIND_COMPLETED)
    ok_all = (kind == KIND_COMPLETED) & (recs.success != SUCCESS_FALSE)
    if len(sets):
        srows, last = _last_per_row(rows[sets])
        at = sets[last]
        status_of = np.where(kind[at] == KIND_PROCESSING, 0, np.where(ok_all[at], 1, 2))
        names = np.array([STATUS_PROCESSING, STATUS_COMPLETED, STATUS_FAILED], dtype=object)
        new = names[status_of].tolist()
        rs = state.row_status
        before = _gather(rs, srows)
        for statuses, sign in ((before, -1), (new, 1)):
            for status in set(statuses):
                state.count_status(status, statuses.count(status) * sign)
        _assign(rs, srows, new)

    if len(finished):
        done = recs.take(finished, FINISH_FIELDS)
        _fold_finished(
            state, block, base, done, rows[finished], ok_all[finished], parse_ts, scanner
        )

    state.changed.add_array(rows)
    # the newest metrics snapshot that is a non-empty object
    for i in np.flatnonzero(recs.metrics_len > 2)[::-1].tolist():
        off, ln = int(recs.metrics_off[i]), int(recs.metrics_len[i])
        raw = bytes(block[off : off + ln])
        if raw[1:-1].strip():
            state.metrics_raw = raw
            break


def _read_left_numbers(block: bytes | bytearray, recs: Columns) -> None:
    """The number fields the scanner left to a full parser, read with orjson as `_fold` does."""
    for i in np.flatnonzero(recs.fix).tolist():
        start = int(recs.start[i])
        data = orjson.loads(bytes(block[start : start + int(recs.len[i])]))["data"]
        for bit, name, column in (
            (FIX_CONF, "confidence", recs.conf),
            (FIX_TIME, "processing_time_ms", recs.time_ms),
            (FIX_COST, "cost_usd", recs.cost),
        ):
            if recs.fix[i] & bit:
                value = num(data.get(name))
                column[i] = np.nan if value is None else value


def _header(state: RunState, block: bytes | bytearray, recs: Columns) -> None:
    """Every line's header (as `RunState.apply`): counts, sequence gaps, first/last timestamps."""
    n = len(recs)
    state.events += n
    seq = recs.seq
    nz = seq[seq > 0]
    if len(nz):
        last0 = state.last_seq
        running = np.maximum.accumulate(nz)
        prev = np.empty_like(nz)
        prev[0] = last0
        np.maximum(running[:-1], last0, out=prev[1:])
        gap = (prev > 0) & (nz - prev > 1)
        state.seq_gaps += int((nz[gap] - prev[gap] - 1).sum())
        state.last_seq = max(last0, int(running[-1]))
    with_ts = np.flatnonzero(recs.ts_len > 0)
    if len(with_ts):
        first, last = int(with_ts[0]), int(with_ts[-1])
        if state.first_ts is None:
            state.first_ts = recs.text(block, "ts", first)
        state.last_ts = recs.text(block, "ts", last)
    counts = np.bincount(recs.kind, minlength=5)
    tc = state.type_counts
    for k in range(1, 5):
        if counts[k]:
            tc[TYPE_NAMES[k]] = tc.get(TYPE_NAMES[k], 0) + int(counts[k])
    if state.run_id is None:
        with_run = np.flatnonzero(recs.run_len > 0)
        if len(with_run):
            state.run_id = recs.text(block, "run", int(with_run[0]))


def _rows(
    state: RunState, block: bytes | bytearray, recs: Columns, scanner: BlockScanner
) -> np.ndarray:
    """Each line's row, creating rows for new ids in line order (as `RunState.row_for`).

    Most lines map through the scanner's numbers with one array look-up, checked against
    the row's id. Numbers first seen here are resolved once, by their first line: found in
    the indexed rows, or a new row (left for `RunState.row_of` to index). If two ids share a
    number, every line that does not check out goes through the dict, in line order.
    """
    prov = recs.prov
    table = scanner.rows_table(int(prov.max()) + 1)
    guess = table[prov]
    ok = fastscan.verify(block, recs.sid_off, recs.sid_len, guess, state.specimen_id)
    needs = np.flatnonzero(~ok)
    if not len(needs):
        return guess
    if (guess[needs] == -1).all():
        nums, first, inverse = np.unique(prov[needs], return_index=True, return_inverse=True)
        lead = needs[first][inverse]  # each line's number's first line
        off, ln = recs.sid_off, recs.sid_len
        if fastscan.same(block, off[needs], ln[needs], off[lead], ln[lead]).all():
            order = np.argsort(first, kind="stable")
            firsts = needs[first[order]]
            found = fastscan.lookup(
                block,
                recs.sid_off[firsts],
                recs.sid_len[firsts],
                state.row_index,
                state.specimen_id,
            )
            table[nums[order]] = found
            return table[prov]
    # ids sharing a number: never trust it again; the dict decides, in line order
    table[prov[needs]] = -2
    row_of = state.row_of
    found, _ = fastscan.rows(
        block, recs.sid_off[needs], recs.sid_len[needs], row_of, state.specimen_id
    )
    state.indexed_rows = len(state.specimen_id)
    rows = guess.copy()
    rows[needs] = found
    return rows


def _fill_first(
    block: bytes | bytearray,
    offsets: np.ndarray,
    lengths: np.ndarray,
    rows: np.ndarray,
    column: list[str],
    known: np.ndarray,
) -> None:
    """An empty `column` entry takes the first non-empty value the row's lines carry.

    `known` marks rows whose entry is known to be filled (a filled entry never changes), so
    the lines of those rows are not looked at again.
    """
    at = np.flatnonzero((lengths > 0) & ~known[rows])
    if not len(at):
        return
    crow, first = np.unique(rows[at], return_index=True)
    at = at[first]
    empty = np.fromiter(map(operator.not_, _gather(column, crow)), bool, len(crow))
    known[crow] = True  # filled now, or already was
    if not empty.all():
        crow, at = crow[empty], at[empty]
    values = fastscan.strings(block, offsets[at], lengths[at])
    _assign(column, crow, values)


def _fold_quality(
    state: RunState,
    block: bytes | bytearray,
    f: Columns,
    last: np.ndarray,
    urows: np.ndarray,
    ok: np.ndarray,
    scanner: BlockScanner,
) -> None:
    """`RunState`'s quality rule per row: its last finish's quality object (none if failed).

    Objects of herbdesk's own shape come with the scanner's key number (`q_parse` in _scan.c),
    mapped to the tally's kinds once per key, and are set for all rows at once; any other
    object is read in full, as the general path does."""
    off, ln, key = f.quality_off[last], f.quality_len[last], f.qkey[last]
    tally = state.quality
    has = (ln > 0) & ok
    if not tally and not has.any() and not (ok & (f.dwc_len[last] > 0)).any():
        return  # logs written before quality was judged: nothing to do per row
    table = scanner.quality_kinds
    if len(table) <= int(key.max(initial=-1)):
        new = [tally.key_kind(k) for k in scanner.quality_keys(len(table))]
        table = scanner.quality_kinds = np.concatenate((table, np.array(new, np.int32)))
    kind = np.full(len(key), -1, np.int32)
    keyed = key >= 0
    kind[keyed] = table[key[keyed]]
    fast = has & (kind >= 0)
    if tally and not has.all():
        tally.clear_rows(urows[~has])
    if fast.any():
        tally.set_kinds(urows[fast], kind[fast], f.qfp[last][fast].view(np.uint64),
                        f.qhas[last][fast].view(np.bool_))  # fmt: skip
    for j in np.flatnonzero(has & ~fast).tolist():
        o, n = int(off[j]), int(ln[j])
        tally.set(int(urows[j]), orjson.loads(bytes(block[o : o + n])))
    # values that came without a quality object are judged, as every fold path does (rare:
    # herbdesk writes both; other writers may not)
    vo, vn = f.dwc_off[last], f.dwc_len[last]
    for j in np.flatnonzero(ok & (ln <= 0) & (vn > 0)).tolist():
        o, n = int(vo[j]), int(vn[j])
        tally.set(int(urows[j]), judged(orjson.loads(bytes(block[o : o + n]))))


def _fold_finished(
    state: RunState,
    block: bytes | bytearray,
    base: int,
    f: Columns,
    frows: np.ndarray,
    ok: np.ndarray,
    parse_ts: Callable[[str], float | None],
    scanner: BlockScanner,
) -> None:
    """`RunState.apply_finished` for every completed/failed line, in columns."""
    state.last_finished_row = int(frows[-1])
    conf, time_ms, cost = f.conf, f.time_ms, f.cost

    # per row, the last finish sets the row's fields
    urows, last = _last_per_row(frows)
    lf = f.take(last, FINISH_FIELDS[:8])
    for col, values in (
        (state.confidence, lf.conf),
        (state.time_ms, lf.time_ms),
        (state.cost_usd, lf.cost),
    ):
        np.frombuffer(col, np.float64)[urows] = values
    seqs = lf.sequence
    sequence: list[int | None] = seqs.tolist()
    for j in np.flatnonzero(seqs == MISSING).tolist():
        sequence[j] = None
    _assign(state.sequence, urows, sequence)
    _assign(state.fields_extracted, urows, _counts(lf.fields).tolist())
    attempts = _counts(lf.attempts)
    attempts[attempts == 0] = 1
    _assign(state.attempts, urows, attempts.tolist())
    errors = [""] * len(urows)
    seen: dict[bytes, str] = {}  # a run's failures mostly repeat a few errors
    for j in np.flatnonzero(~ok[last]).tolist():
        off, ln = int(lf.error_off[j]), int(lf.error_len[j])
        raw = bytes(block[off : off + ln]) if ln >= 0 else b"null"
        text = seen.get(raw)
        if text is None:
            text = seen[raw] = error_text(orjson.loads(raw))
        errors[j] = text
    _assign(state.error, urows, errors)
    _fold_quality(state, block, f, last, urows, ok[last], scanner)
    fold_spans(state.terms, block, base, urows, f.dwc_off[last], f.dwc_len[last], ok[last])

    # totals and series over every finish, in order
    state.tokens += _int_sum(_counts(f.tokens))
    state.cost_total = _seq_sum(state.cost_total, np.where(np.isnan(cost), 0.0, cost))
    good_conf = ok & ~np.isnan(conf)
    state.conf_sum = _seq_sum(state.conf_sum, conf[good_conf])
    state.conf_n += int(good_conf.sum())
    state.finish_conf.frombytes(np.ascontiguousarray(conf[good_conf]).tobytes())
    timed = ~np.isnan(time_ms)
    state.time_sum = _seq_sum(state.time_sum, time_ms[timed])
    state.time_n += int(timed.sum())

    m = len(f)
    okv = ok.astype(np.int64)
    f0, k0 = state.finishes, state.finish_ok
    x = np.arange(f0 + 1, f0 + m + 1, dtype=np.int64)
    cum_ok = k0 + np.cumsum(okv)
    recent = state.recent
    history = np.concatenate((np.fromiter(recent, np.int64, len(recent)), okv))
    csum = np.concatenate(([0], np.cumsum(history)))
    end = len(recent) + np.arange(1, m + 1)
    begin = np.maximum(0, end - ROLLING_WINDOW)
    state.finish_x.frombytes(x.astype(np.float64).tobytes())
    state.cum_rate.frombytes((cum_ok / x).tobytes())
    state.roll_rate.frombytes(((csum[end] - csum[begin]) / (end - begin)).tobytes())
    state.finishes = f0 + m
    state.finish_ok = int(cum_ok[-1])
    recent.extend(bool(v) for v in okv[-ROLLING_WINDOW:].tolist())
    state.recent_ok = int(sum(recent))

    epoch = f.epoch.copy()
    for j in np.flatnonzero(f.ts_kind == TS_PYTHON).tolist():
        value = parse_ts(f.text(block, "ts", j))
        epoch[j] = value if value is not None else np.nan
    epoch[f.ts_kind < TS_EPOCH] = np.nan  # no timestamp: parse_ts("") gives None
    state.finish_epoch.frombytes(epoch.tobytes())
