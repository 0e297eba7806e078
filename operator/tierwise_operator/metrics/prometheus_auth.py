"""How the operator authenticates to Prometheus, and keeping those secrets out of what it says.

Credentials come from files (a mounted Secret), re-read every round so a
rotated Secret takes effect without a restart. Credentials embedded in the URL
still work, but the URL is only ever shown with them cut out: status
conditions, Events and logs are readable by every tenant who can read models.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

REDACTED = "***"


class CredentialsError(RuntimeError):
    """A configured credentials file cannot be read; the message names the file, never its text."""


def redact_url(url: str) -> str:
    """`url` with any user and password replaced by `***`."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{REDACTED}@{host}"))


def url_secrets(url: str) -> list[str]:
    """The user-info of `url` as it may appear in messages: raw and percent-decoded."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return []
    userinfo = parts.netloc.rsplit("@", 1)[0]
    found = {userinfo, unquote(userinfo)}
    if parts.password:
        found |= {parts.password, unquote(parts.password)}
    return sorted((s for s in found if s), key=len, reverse=True)


def redact(text: str, secrets: Iterable[str]) -> str:
    """`text` with every occurrence of each secret replaced by `***` (longest first)."""
    for secret in sorted(set(secrets), key=len, reverse=True):
        if secret:
            text = text.replace(secret, REDACTED)
    return text


@dataclass(frozen=True)
class Credentials:
    """What one round of queries sends: a bearer token and/or basic auth."""

    token: str | None = None
    basic: tuple[str, str] | None = None

    @property
    def headers(self) -> dict[str, str] | None:
        return {"Authorization": f"Bearer {self.token}"} if self.token else None

    @property
    def secrets(self) -> list[str]:
        return [s for s in (self.token, self.basic[1] if self.basic else None) if s]


@dataclass(frozen=True)
class PrometheusAuth:
    """TLS trust and credential files, from the operator settings."""

    ca_file: str = ""
    """PEM bundle to verify Prometheus' certificate against; empty: the system's."""
    token_file: str = ""
    """A bearer token."""
    basic_auth_dir: str = ""
    """A folder with `username` and `password` files (a `kubernetes.io/basic-auth` Secret)."""

    @property
    def verify(self) -> str | bool:
        """What requests' `verify` gets: never False."""
        return self.ca_file or True

    def credentials(self) -> Credentials:
        """Read the credential files now; CredentialsError when one is configured but unreadable."""
        token = _read(Path(self.token_file)) if self.token_file else None
        basic = None
        if self.basic_auth_dir:
            folder = Path(self.basic_auth_dir)
            basic = (_read(folder / "username"), _read(folder / "password"))
        return Credentials(token=token, basic=basic)


def _read(path: Path) -> str:
    try:
        value = path.read_text().strip()
    except OSError as exc:
        raise CredentialsError(f"cannot read {path}: {exc.strerror or type(exc).__name__}") from exc
    if not value:
        raise CredentialsError(f"{path} is empty")
    return value
