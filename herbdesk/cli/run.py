"""`herbdesk run`: one headless run with live progress in the terminal."""

from __future__ import annotations

import argparse
import threading
from typing import Any

from herbdesk.cli.exitcodes import (
    EXIT_CANCELLED,
    EXIT_INTERNAL,
    EXIT_USAGE,
    exit_code_for_outcome,
    usage_error,
)
from herbdesk.cli.runconfig import build_run_config, load_config_or_exit


def cmd_run(args: argparse.Namespace) -> int:
    from herbdesk.cli.alerts import build_alerts
    from herbdesk.cli.progress import TerminalProgress
    from herbdesk.extraction.engines import available_engines
    from herbdesk.extraction.images import has_images, no_images_message
    from herbdesk.extraction.pipeline import Pipeline

    try:
        config = build_run_config(args)
    except SystemExit as exc:
        return int(exc.code or EXIT_USAGE)
    if config.engine.engine not in available_engines():
        return usage_error(
            f"unknown engine {config.engine.engine!r}; available: {', '.join(available_engines())}"
        )
    if not has_images(config.inputs):
        return usage_error(no_images_message(config.inputs))
    try:
        alerts = build_alerts(args, load_config_or_exit(args.config))
    except ValueError as exc:
        return usage_error(str(exc))
    try:
        pipeline = Pipeline(config)
    except (OSError, ValueError) as exc:
        return usage_error(str(exc))
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
    return exit_code_for_outcome(outcome)
