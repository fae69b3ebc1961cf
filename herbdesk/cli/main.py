"""The `herbdesk` command: `run` (headless), `summary`, and the desktop app with no arguments."""

from __future__ import annotations

import argparse
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from herbdesk import __version__

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_USAGE = 2
EXIT_PREFLIGHT = 3
EXIT_HALTED = 4
EXIT_FATAL = 5
EXIT_BELOW_THRESHOLD = 6
EXIT_BUDGET = 7
EXIT_CANCELLED = 130

EXIT_CODES_HELP = """exit codes:
  0    run completed
  1    internal error
  2    usage error (bad arguments, no images, unreadable config), or the run directory is
       in use by another herbdesk process (its pid, host and start are named)
  3    preflight failed (no/refused API key, model missing, output not writable); nothing attempted
  4    halted by validation: a checkpoint failed (success or record quality), too many
       failures in a row, identical records, the run degraded, or known-answer sheets wrong
  5    halted by a fatal error mid-run (key revoked, model gone, disk full)
  6    ran to the end but below threshold (success rate or share of usable records)
  7    paused at its --budget: nothing new started, in-flight specimens finished; go on
       with --resume RUN_DIR --budget HIGHER
  130  cancelled (Ctrl-C); in-flight specimens were finished or left for --resume
"""


def _build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="herbdesk",
        description="Run and monitor Darwin Core extraction from herbarium specimen images. "
        "With no command, opens the desktop app.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"herbdesk {__version__}")
    # handled in main() before parsing (it takes no command); declared so --help lists it
    p.add_argument(
        "--smoke-test",
        action="store_true",
        help="self-test the install: run the sample sheets offscreen",
    )
    sub = p.add_subparsers(dest="command")
    sub.add_parser("app", help="open the desktop app (the default with no command); see app --help")
    sub.add_parser("open", help="open a run directory or events.jsonl in the app (--screenshot F)")

    r = sub.add_parser(
        "run",
        help="extract Darwin Core from images, headless, streaming events",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    r.add_argument("images", nargs="*", type=Path, help="image files or folders (recursive)")
    r.add_argument("--sample", action="store_true", help="use the bundled sample sheets")
    r.add_argument(
        "--engine", help="ocr (offline, default) or openrouter (any OpenAI-compatible API)"
    )
    r.add_argument(
        "--model", help="model id for the API engine (default qwen/qwen2.5-vl-72b-instruct:free)"
    )
    r.add_argument("--base-url", help="API base URL (default https://openrouter.ai/api/v1)")
    r.add_argument(
        "--api-key-env",
        default="OPENROUTER_API_KEY",
        help="environment variable holding the API key (default OPENROUTER_API_KEY); "
        "the OS keyring is tried after it",
    )
    r.add_argument("--concurrency", type=int, help="specimens in flight (default 4; 1 for ocr)")
    r.add_argument("--out", type=Path, help="output folder for run directories (default ./runs)")
    r.add_argument("--run-id", help="name of the run directory (default run-<UTC time>-<hex>)")
    r.add_argument("--limit", type=int, help="process only the first N images")
    r.add_argument("--resume", type=Path, metavar="RUN_DIR", help="continue a previous run")
    r.add_argument("--prompt", type=Path, metavar="FILE", help="prompt file for the API engine")
    r.add_argument("--max-side", type=int, help="downscale images to this long side (default 2048)")
    r.add_argument("--timeout", type=float, help="per-request timeout in seconds (default 120)")
    r.add_argument("--max-attempts", type=int, help="attempts per specimen on transient errors (4)")
    r.add_argument(
        "--requests-per-minute",
        type=float,
        metavar="N",
        help="start at most N API requests a minute across all workers (default: 18 for "
        "OpenRouter's ':free' models, whose cap is 20; otherwise unpaced; 0 = unpaced)",
    )
    r.add_argument(
        "--budget",
        type=float,
        metavar="USD",
        help="pause the run before its cost (over all its invocations) would go past USD: "
        "in-flight specimens finish, nothing new starts, and herbdesk run ends (exit 7); "
        "go on with --resume RUN_DIR --budget HIGHER",
    )
    r.add_argument("--config", type=Path, help="TOML file with [run] and [validation] tables")
    v = r.add_argument_group("validation")
    v.add_argument(
        "--checkpoint-after", type=int, help="finished specimens before the checkpoint (5)"
    )
    v.add_argument("--checkpoint-threshold", type=float, help="halt below this success rate (0.5)")
    v.add_argument("--warning-every", type=int, help="check the success rate every N (50)")
    v.add_argument("--warning-threshold", type=float, help="warn below this success rate (0.7)")
    v.add_argument(
        "--max-consecutive-failures", type=int, help="halt after N failures in a row (10; 0=off)"
    )
    q = r.add_argument_group("record quality (docs/quality.md)")
    q.add_argument(
        "--quality-threshold",
        type=float,
        help="halt at the checkpoint, and fail the end verdict, below this share of usable "
        "records (0.5)",
    )
    q.add_argument(
        "--no-degraded-halt",
        dest="degraded_halt",
        action="store_false",
        default=None,
        help="do not halt when the last 50 specimens fall below the thresholds",
    )
    q.add_argument(
        "--require",
        metavar="TERMS",
        help="terms a usable record needs: comma between groups, | between alternatives "
        "(default scientificName,eventDate|recordedBy|locality)",
    )
    q.add_argument("--catalog-pattern", metavar="REGEX", help="catalogNumber must match this")
    q.add_argument(
        "--gold",
        type=Path,
        metavar="FILE",
        help="known-answer sheets (CSV: image or catalogNumber, then expected terms); "
        "queued first, a run whose answers are wrong halts",
    )
    q.add_argument(
        "--gold-threshold", type=float, help="halt below this share of right gold terms (0.7)"
    )
    q.add_argument(
        "--checklist",
        type=Path,
        metavar="FILE",
        help="names checklist (text, CSV with scientificName, DwC-A, COLDP) to match names",
    )
    r.add_argument("--quiet", action="store_true", help="no live progress, only the final line")
    from herbdesk.monitor.alerts import add_alert_arguments

    add_alert_arguments(r)
    from herbdesk.distributed.cli import add_broker_arguments, add_worker_parser

    add_broker_arguments(r)
    add_worker_parser(sub)

    from herbdesk.tailcmd import add_tail_parser

    add_tail_parser(sub)

    s = sub.add_parser(
        "summary",
        help="print what a run did, from its events.jsonl or run dir",
        description="Print what a run did: status, counts, record quality, cost, the writer.",
    )
    s.add_argument(
        "path",
        type=Path,
        help="a run directory, its events.jsonl, a raw.jsonl (also the original scripts'), "
        "or a runs folder (lists the runs inside)",
    )
    s.add_argument("--json", action="store_true", help="machine-readable output")
    _add_export_parser(sub)
    return p


EXPORT_EXIT_HELP = """exit codes:
  0    written
  1    internal error
  2    usage error: not a run or log, no raw.jsonl, --out exists (without --force), its
       folder missing, or the file could not be written; nothing is left behind
"""


def _add_export_parser(sub: Any) -> None:
    e = sub.add_parser(
        "export",
        help="write a run's records as CSV or a Darwin Core Archive (docs/export.md)",
        description="Write a run's records (per specimen its newest successful one) as an "
        "occurrences CSV or a Darwin Core Archive, with the run's provenance.",
        epilog=EXPORT_EXIT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    e.add_argument(
        "path",
        type=Path,
        help="a run directory, its events.jsonl, or a raw.jsonl (also the original scripts')",
    )
    e.add_argument(
        "--format", dest="fmt", choices=("csv", "dwca"), required=True, help="csv or dwca (zip)"
    )
    e.add_argument(
        "--only",
        choices=("usable",),
        help="'usable': only records the quality checks judge usable (docs/quality.md)",
    )
    e.add_argument("--out", type=Path, required=True, help="the file to write")
    e.add_argument("--force", action="store_true", help="replace --out if it exists")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "--smoke-test":
        from herbdesk.smoke import run_smoke_test

        return run_smoke_test()
    if not argv or argv[0] in ("app", "open"):
        # `open PATH` and `app …` go straight to the app's own argument parser
        return _launch_app(argv[1:] if argv else [], f"herbdesk {argv[0] if argv else 'app'}")
    parser = _build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # said by the subcommand's parser: its own usage, not the top level's
        _subparser(parser, args.command).error(f"unrecognized arguments: {' '.join(extra)}")
    if args.smoke_test:  # `--smoke-test` after another option
        if args.command is not None:
            parser.error("--smoke-test takes no command")
        from herbdesk.smoke import run_smoke_test

        return run_smoke_test()
    from herbdesk.distributed.cli import maybe_run_distributed

    if (code := maybe_run_distributed(args)) is not None:
        return code
    if args.command == "run":
        return cmd_run(args)
    if args.command == "tail":
        from herbdesk.tailcmd import cmd_tail

        return cmd_tail(args)
    if args.command == "summary":
        from herbdesk.summary import cmd_summary

        return cmd_summary(args.path, as_json=args.json)
    if args.command == "export":
        return cmd_export(args)
    parser.print_help()
    return EXIT_USAGE


def cmd_export(args: argparse.Namespace) -> int:
    from herbdesk.export import ExportError, ExportOptions, export
    from herbdesk.termtext import clean_text

    options = ExportOptions(
        source=args.path,
        out=args.out,
        fmt=args.fmt,
        only_usable=args.only == "usable",
        force=args.force,
    )
    try:
        result = export(options)
    except ExportError as exc:
        return _usage_error(str(exc))
    except OSError as exc:  # a full disk, a refused folder: the temporary file is gone
        return _usage_error(f"cannot write {args.out}: {exc}")
    for note in result.notes:
        print(f"herbdesk: note: {clean_text(note)}", file=sys.stderr)
    print(f"herbdesk: {clean_text(result.message())}")
    return EXIT_OK


def _subparser(parser: argparse.ArgumentParser, name: str | None) -> argparse.ArgumentParser:
    for action in parser._actions:  # argparse keeps subparsers only here
        if isinstance(action, argparse._SubParsersAction) and name in action.choices:
            sub: argparse.ArgumentParser = action.choices[name]
            return sub
    return parser


def _launch_app(argv: list[str], prog: str = "herbdesk app") -> int:
    try:
        from herbdesk.ui.app import run_app
    except ImportError as exc:
        print(
            f"herbdesk: the desktop app is not available ({exc}); try `herbdesk run --help`",
            file=sys.stderr,
        )
        return EXIT_USAGE
    return run_app(argv, prog)


def _load_config(path: Path | None) -> dict[str, Any]:
    from herbdesk.configfile import ConfigError, load_config

    try:
        return load_config(path)
    except ConfigError as exc:
        raise SystemExit(_usage_error(str(exc))) from exc


def _usage_error(msg: str) -> int:
    from herbdesk.termtext import clean_text

    print(f"herbdesk: error: {clean_text(msg)}", file=sys.stderr)  # paths, exception texts
    return EXIT_USAGE


def build_run_config(args: argparse.Namespace) -> Any:
    """Merge flags over the config file over a resumed run's settings over defaults."""
    from herbdesk.apikeys import get_api_key
    from herbdesk.assets import default_prompt_path, sample_specimens_dir
    from herbdesk.extraction import runfiles
    from herbdesk.extraction.engines import EngineSettings
    from herbdesk.extraction.pipeline import RunConfig
    from herbdesk.monitor.validation import ValidationConfig
    from herbdesk.quality.judge import QualitySettings

    conf = _load_config(args.config)
    run_conf: dict[str, Any] = dict(conf.get("run", {}))
    val_conf: dict[str, Any] = dict(conf.get("validation", {}))
    prev: dict[str, Any] = {}
    if args.resume is not None:
        if not (args.resume / runfiles.EVENTS).exists():
            raise SystemExit(
                _usage_error(f"{args.resume} is not a run directory (no events.jsonl)")
            )
        prev = runfiles.read_run_json(args.resume).get("config", {})
        val_conf = {**prev.get("validation", {}), **val_conf}

    def pick(flag: Any, key: str, default: Any) -> Any:
        if flag is not None:
            return flag
        if key in run_conf:
            return run_conf[key]
        if prev.get(key) is not None:
            return prev[key]
        return default

    inputs: list[Path] = list(args.images)
    if args.sample:
        inputs.append(sample_specimens_dir())
    if not inputs:
        inputs = [_written_path(p) for p in (run_conf.get("inputs") or prev.get("inputs") or [])]
    if not inputs:
        raise SystemExit(_usage_error("no images given: pass files or folders, or --sample"))
    missing = [p for p in inputs if not p.exists()]
    if missing:
        hint = ""
        if args.resume is not None and any(not p.is_absolute() for p in missing):
            # run.json of an older version: its paths are relative to where that run started
            hint = " (relative to where the run was started: resume from there, or name them)"
        raise SystemExit(_usage_error(f"not found: {', '.join(map(str, missing))}{hint}"))

    engine = str(pick(args.engine, "engine", "ocr"))
    base_url = str(pick(args.base_url, "base_url", "https://openrouter.ai/api/v1") or "")
    if not base_url:
        base_url = "https://openrouter.ai/api/v1"
    prompt_arg = pick(args.prompt, "prompt_path", None)
    prompt_path = Path(prompt_arg) if prompt_arg else default_prompt_path()
    try:
        prompt_text = prompt_path.read_text(encoding="utf-8") if prompt_path.is_file() else ""
    except UnicodeDecodeError as exc:
        raise SystemExit(
            _usage_error(f"prompt file {prompt_path}: not UTF-8 text (byte {exc.start})")
        ) from exc
    except OSError as exc:
        raise SystemExit(_usage_error(f"cannot read prompt file {prompt_path}: {exc}")) from exc
    settings = EngineSettings(
        engine=engine,
        model=str(pick(args.model, "model", "") or ""),
        base_url=base_url,
        api_key=get_api_key(base_url, args.api_key_env) if engine != "ocr" else None,
        prompt_text=prompt_text,
        max_side=int(pick(args.max_side, "max_side", 2048)),
        timeout_s=float(pick(args.timeout, "timeout_s", 120.0)),
    )
    validation = ValidationConfig(
        **{k: val_conf[k] for k in vars(ValidationConfig()) if k in val_conf}
    )
    for flag, key in (
        ("checkpoint_after", "checkpoint_after"),
        ("checkpoint_threshold", "checkpoint_threshold"),
        ("warning_every", "warning_every"),
        ("warning_threshold", "warning_threshold"),
        ("max_consecutive_failures", "max_consecutive_failures"),
        ("quality_threshold", "quality_threshold"),
        ("degraded_halt", "degraded_halt"),
        ("gold_threshold", "gold_threshold"),
    ):
        val = getattr(args, flag)
        if val is not None:
            setattr(validation, key, val)
    try:
        validation.validate()
    except ValueError as exc:
        raise SystemExit(_usage_error(str(exc))) from exc
    concurrency = int(pick(args.concurrency, "concurrency", 1 if engine == "ocr" else 4))
    if concurrency < 1:
        raise SystemExit(_usage_error("--concurrency must be >= 1"))
    limit = pick(args.limit, "limit", None)
    q_conf: dict[str, Any] = {**prev.get("quality", {}), **conf.get("quality", {})}

    def qpick(flag: Any, key: str) -> Any:
        return flag if flag is not None else q_conf.get(key)

    gold, checklist = qpick(args.gold, "gold"), qpick(args.checklist, "checklist")
    quality = QualitySettings(
        require=qpick(args.require, "require"),
        catalog_pattern=qpick(args.catalog_pattern, "catalog_pattern"),
        gold_path=Path(gold).absolute() if gold else None,
        checklist_path=Path(checklist).absolute() if checklist else None,
    )
    for path in (quality.gold_path, quality.checklist_path):
        if path is not None and not path.is_file():
            raise SystemExit(_usage_error(f"not found: {path}"))
    if quality.checklist_path and engine == "ocr":  # the offline parser corrects names by it
        settings.extra["checklist"] = str(quality.checklist_path)
    return RunConfig(
        inputs=inputs,
        out_dir=Path(pick(args.out, "out_dir", "runs")),
        run_id=args.run_id,
        engine=settings,
        prompt_path=prompt_path
        if (args.prompt or run_conf.get("prompt_path") or prev.get("prompt_path"))
        else None,
        concurrency=concurrency,
        limit=int(limit) if limit is not None else None,
        resume_dir=args.resume,
        validation=validation,
        quality=quality,
        max_attempts=int(pick(args.max_attempts, "max_attempts", 4)),
        requests_per_minute=_pace(pick(args.requests_per_minute, "requests_per_minute", None)),
        budget_usd=_budget(pick(args.budget, "budget_usd", None)),
    )


def _written_path(text: Any) -> Path:
    """A path as run.json holds it: a folder whose name is not UTF-8 is stored as `\\xNN`."""
    from herbdesk.fsnames import fs_unescape

    path = Path(str(text))
    raw = Path(fs_unescape(str(text)))
    return raw if not path.exists() and raw.exists() else path


def _number(value: Any, what: str, ok: Callable[[float], bool], rule: str) -> float | None:
    """A number from a flag or the config file (None: not given); a usage error otherwise."""
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise SystemExit(_usage_error(f"{what}: not a number: {value!r}")) from exc
    if not ok(number):  # NaN fails every comparison, so it fails here
        raise SystemExit(_usage_error(rule))
    return number


def _pace(value: Any) -> float | None:
    return _number(
        value, "requests per minute", lambda v: v >= 0, "--requests-per-minute must be >= 0"
    )


def _budget(value: Any) -> float | None:
    return _number(
        value,
        "budget",
        lambda v: 0 < v < float("inf"),
        "--budget must be a positive number of USD",
    )


def cmd_run(args: argparse.Namespace) -> int:
    from herbdesk.extraction.engines import available_engines
    from herbdesk.extraction.images import has_images
    from herbdesk.extraction.pipeline import Pipeline
    from herbdesk.monitor.alerts import build_alerts
    from herbdesk.progress import TerminalProgress

    try:
        config = build_run_config(args)
    except SystemExit as exc:
        return int(exc.code or EXIT_USAGE)
    if config.engine.engine not in available_engines():
        return _usage_error(
            f"unknown engine {config.engine.engine!r}; available: {', '.join(available_engines())}"
        )
    if not has_images(config.inputs):
        return _usage_error(
            "no images found (looked for jpg, jpeg, png, tif, tiff under "
            + ", ".join(map(str, config.inputs))
            + ")"
        )
    try:
        alerts = build_alerts(args, _load_config(args.config))
    except ValueError as exc:
        return _usage_error(str(exc))
    try:
        pipeline = Pipeline(config)
    except (OSError, ValueError) as exc:
        return _usage_error(str(exc))
    if alerts:
        alerts.attach(pipeline.bus, pipeline.run_dir)
    progress = TerminalProgress(quiet=args.quiet)
    pipeline.subscribe(progress.on_event, "terminal")
    outcome_box: list[Any] = []
    done = threading.Event()

    def _run() -> None:
        try:
            outcome_box.append(pipeline.run())
        finally:
            done.set()

    worker = threading.Thread(target=_run, name="herbdesk-run", daemon=True)
    with progress:
        worker.start()
        interrupts = 0
        # Wait on an Event, not Thread.join: a join interrupted by Ctrl-C can leave the thread
        # reported as dead while it still runs (CPython issue), which would cut the run short.
        while not done.is_set():
            try:
                done.wait(0.2)
            except KeyboardInterrupt:
                interrupts += 1
                if interrupts == 1:
                    progress.note(
                        "stopping: in-flight specimens finish, nothing new starts "
                        "(Ctrl-C again to abandon them)"
                    )
                    pipeline.control.cancel()
                else:
                    progress.note(
                        f"abandoning in-flight specimens; resume with --resume {pipeline.run_dir}"
                    )
                    return EXIT_CANCELLED
        if alerts:
            alerts.close()  # flush what the end of the run raised (bounded wait)
    if not outcome_box:
        return EXIT_INTERNAL
    outcome = outcome_box[0]
    progress.final(outcome)
    if outcome.status == "completed":
        return EXIT_BELOW_THRESHOLD if outcome.verdict == "below_threshold" else EXIT_OK
    if outcome.status == "cancelled":
        return EXIT_CANCELLED
    return {
        "preflight_failed": EXIT_PREFLIGHT,
        "early_validation_failed": EXIT_HALTED,
        "consecutive_failures": EXIT_HALTED,
        "early_quality_failed": EXIT_HALTED,
        "identical_records": EXIT_HALTED,
        "degraded": EXIT_HALTED,
        "gold_failed": EXIT_HALTED,
        "fatal_error": EXIT_FATAL,
        "budget": EXIT_BUDGET,
    }.get(outcome.reason or "", EXIT_INTERNAL)
