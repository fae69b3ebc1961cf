"""The alert flags of `herbdesk run` and the consumer built from them and the config file."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any

from herbdesk.monitor.alert_channels import SMTP_SECURITY, WEBHOOK_FORMATS
from herbdesk.monitor.alerts import (
    ALERT_KINDS,
    DEFAULT_ALERTS,
    AlertConfig,
    AlertsConsumer,
    WebhookTarget,
    parse_alert_events,
    resolve_url,
    smtp_password,
)


def add_alert_arguments(parser: argparse.ArgumentParser) -> None:
    """The `alerts` argument group of `herbdesk run`."""
    g = parser.add_argument_group("alerts", "message people when a run halts, stalls or ends")
    g.add_argument(
        "--alert-webhook",
        action="append",
        metavar="URL",
        help="incoming webhook (Slack, Teams, Mattermost, any JSON endpoint); "
        "repeatable; env:NAME reads the URL from $NAME",
    )
    g.add_argument(
        "--alert-webhook-format",
        choices=WEBHOOK_FORMATS,
        help="payload for --alert-webhook (default: teams for Microsoft URLs, else slack)",
    )
    g.add_argument(
        "--alert-email",
        action="append",
        metavar="ADDRESS",
        help="e-mail address for alerts (repeatable; needs --smtp-host)",
    )
    g.add_argument("--smtp-host", help="SMTP server for --alert-email")
    g.add_argument("--smtp-port", type=int, help="SMTP port (587 starttls, 465 ssl, 25 none)")
    g.add_argument("--smtp-security", choices=SMTP_SECURITY, help="default starttls")
    g.add_argument(
        "--smtp-user",
        help="SMTP login; the password comes from "
        "$HERBDESK_SMTP_PASSWORD or the OS keyring, never a flag or file",
    )
    g.add_argument("--smtp-from", metavar="ADDRESS", help="From: address (default the user)")
    g.add_argument(
        "--alert-on",
        action="append",
        metavar="EVENT,...",
        help=f"which events alert: {', '.join(ALERT_KINDS)} or all "
        f"(default {','.join(sorted(DEFAULT_ALERTS))})",
    )
    g.add_argument(
        "--stall-minutes",
        type=float,
        metavar="N",
        help="alert when a running run is silent this long (default 15; 0 = off)",
    )


def build_alerts(args: argparse.Namespace, conf: Mapping[str, Any]) -> AlertsConsumer | None:
    """The consumer from flags over the config's `[alerts]` table; None when no channel is
    set. Raises ValueError (a usage error) before the run directory exists."""
    table = conf.get("alerts") or {}
    if not isinstance(table, Mapping):
        raise ValueError("[alerts] in the config file must be a table")
    cfg = AlertConfig.from_table(table)
    apply_alert_flags(cfg, args)
    if not cfg.has_channels:
        if getattr(args, "alert_on", None) or getattr(args, "stall_minutes", None) is not None:
            raise ValueError("--alert-on/--stall-minutes need --alert-webhook or --alert-email")
        return None
    cfg.validate()
    password = smtp_password(cfg.smtp) if cfg.emails else None
    if cfg.emails and cfg.smtp.user and not password:
        raise ValueError(
            f"--smtp-user {cfg.smtp.user} needs a password in "
            f"${cfg.smtp.password_env} or the OS keyring"
        )
    # channels check their URL/address here: a usage error now, not a failed alert later
    return AlertsConsumer(cfg, smtp_password=password, quiet=bool(getattr(args, "quiet", False)))


def apply_alert_flags(cfg: AlertConfig, args: argparse.Namespace) -> None:
    """Flags add channels to the file's and override its scalars."""
    fmt = getattr(args, "alert_webhook_format", None)
    for url in getattr(args, "alert_webhook", None) or []:
        cfg.webhooks.append(WebhookTarget(resolve_url(url), fmt))
    for e in getattr(args, "alert_email", None) or []:
        if e not in cfg.emails:
            cfg.emails.append(e)
    s = cfg.smtp
    s.host = getattr(args, "smtp_host", None) or s.host
    s.port = getattr(args, "smtp_port", None) or s.port
    s.security = getattr(args, "smtp_security", None) or s.security
    s.user = getattr(args, "smtp_user", None) or s.user
    s.sender = getattr(args, "smtp_from", None) or s.sender
    if getattr(args, "alert_on", None):
        cfg.events = parse_alert_events(args.alert_on)
    if getattr(args, "stall_minutes", None) is not None:
        cfg.stall_minutes = float(args.stall_minutes)
