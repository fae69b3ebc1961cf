"""Where the API key comes from: the environment, else the OS keyring. Never from a file."""

from __future__ import annotations

import os
from urllib.parse import urlparse

KEYRING_SERVICE = "herbdesk"
DEFAULT_KEY_ENV = "OPENROUTER_API_KEY"


def keyring_user(base_url: str) -> str:
    """One stored key per API host (openrouter.ai, localhost:11434, ...)."""
    p = urlparse(base_url)
    return p.netloc or base_url


def get_api_key(base_url: str, env_var: str = DEFAULT_KEY_ENV) -> str | None:
    key = os.environ.get(env_var, "").strip()
    if key:
        return key
    try:
        import keyring

        stored = keyring.get_password(KEYRING_SERVICE, keyring_user(base_url))
    except Exception:  # no backend (headless Linux) or a locked store: fall back to nothing
        return None
    return stored or None


def store_api_key(base_url: str, key: str) -> bool:
    """Save in the OS keyring; False when no secure backend is available."""
    try:
        import keyring
        from keyring.backends import fail

        if isinstance(keyring.get_keyring(), fail.Keyring):
            return False
        keyring.set_password(KEYRING_SERVICE, keyring_user(base_url), key)
    except Exception:
        return False
    return True
