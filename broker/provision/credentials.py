"""Passwords for the SCRAM users provisioning creates: supplied ones, or generated and stored.

A password for a new user comes from the secrets the operator supplies (``--secrets PATH``):

* a directory holding ``<user>.password`` files (one line each), or
* a YAML file mapping user names to passwords.

A user with no supplied password gets a random one, written to
``<credentials_dir>/<user>.password`` with mode 0600 (the directory 0700). Passwords are never
printed or logged; the CLI only says which files it wrote.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path

import yaml

from broker.crypto.private_files import write_file
from broker.errors import ConfigError

PASSWORD_SUFFIX = ".password"  # noqa: S105 - a file name suffix, not a password
_GENERATED_BYTES = 32


def generate_password() -> str:
    """A random URL-safe password (256 bits)."""
    return secrets.token_urlsafe(_GENERATED_BYTES)


def credential_path(directory: Path, user: str) -> Path:
    """Where the password of ``user`` is kept in ``directory``."""
    return directory / f"{user}{PASSWORD_SUFFIX}"


def _read_password(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"secrets: cannot read {path}: {exc.strerror}") from exc
    password = text.strip()
    if not password:
        raise ConfigError(f"secrets: {path} is empty")
    return password


def load_secrets(path: Path | None) -> dict[str, str]:
    """User name -> password from a secrets directory or YAML file; empty when ``path`` is None."""
    if path is None:
        return {}
    if path.is_dir():
        return {
            entry.name.removesuffix(PASSWORD_SUFFIX): _read_password(entry)
            for entry in sorted(path.iterdir())
            if entry.is_file() and entry.name.endswith(PASSWORD_SUFFIX)
        }
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"secrets: cannot read {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"secrets: {path} is not valid YAML") from exc
    if not isinstance(raw, Mapping):
        raise ConfigError(f"secrets: {path} must map user names to passwords")
    out: dict[str, str] = {}
    for user, password in raw.items():
        if not isinstance(password, str) or not password.strip():
            raise ConfigError(f"secrets: {path}: the password of {user!r} must be a non-empty text")
        out[str(user)] = password.strip()
    return out


def read_credential(directory: Path, user: str) -> str:
    """The stored password of ``user`` (raises :class:`ConfigError` when there is none)."""
    return _read_password(credential_path(directory, user))


def write_credential(directory: Path, user: str, password: str) -> Path:
    """Store ``password`` for ``user`` in ``directory`` (0600, atomically); return the path."""
    target = credential_path(directory, user)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        os.chmod(directory, 0o700)
    except OSError as exc:
        raise ConfigError(f"credentials: cannot write {target}: {exc.strerror}") from exc
    write_file(target, (password + "\n").encode("utf-8"))
    return target


def remove_credential(directory: Path, user: str) -> bool:
    """Delete the stored password of ``user``; say whether there was one."""
    try:
        credential_path(directory, user).unlink()
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise ConfigError(f"credentials: cannot remove the password of {user!r}: {exc}") from exc
    return True
