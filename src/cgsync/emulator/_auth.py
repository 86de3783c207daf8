"""Access tokens of the OAuth2 client-credentials flow."""

from __future__ import annotations

import hmac
import secrets
import threading
from time import monotonic  # a module global: tests replace it with a clock of their own


class TokenStore:
    """Issues bearer tokens and tells whether one is still valid (lifetimes in real seconds)."""

    def __init__(self, client_id: str, client_secret: str) -> None:
        self._client_id = client_id
        self._client_secret = client_secret
        self._expiry: dict[str, float] = {}
        self.issued: list[str] = []
        """Every token ever issued, for tests that look for a leak."""
        self._lock = threading.Lock()

    def credentials_match(self, client_id: str, client_secret: str) -> bool:
        id_ok = hmac.compare_digest(client_id.encode(), self._client_id.encode())
        secret_ok = hmac.compare_digest(client_secret.encode(), self._client_secret.encode())
        return id_ok and secret_ok

    def issue(self, ttl_seconds: int) -> str:
        token = secrets.token_urlsafe(32)
        now = monotonic()
        with self._lock:
            self._expiry = {t: end for t, end in self._expiry.items() if end > now}
            self._expiry[token] = now + ttl_seconds
            self.issued.append(token)
        return token

    def is_valid(self, token: str) -> bool:
        with self._lock:
            end = self._expiry.get(token)
        return end is not None and monotonic() < end

    def rotate(self, client_id: str, client_secret: str) -> None:
        """Accept only these credentials from now on, as after a Connected App is replaced;
        tokens already issued stop working."""
        with self._lock:
            self._client_id, self._client_secret = client_id, client_secret
            self._expiry.clear()

    def expire_all(self) -> None:
        with self._lock:
            self._expiry.clear()
