"""What every layer may use and that uses nothing of herbdesk: the Darwin Core vocabulary
(dwc), text safe for terminals (termtext), file names that are not UTF-8 (fsnames), secrets
kept out of logs (redaction), API keys from the environment or the OS keyring (apikeys) and the
bundled files (assets)."""
