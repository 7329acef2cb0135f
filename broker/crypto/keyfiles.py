"""Finding an agency's private key files in the key directory.

Naming (see :mod:`broker.crypto.signing_keys` and :mod:`broker.crypto.encryption_keys`):
``<agency>.<hex>.ed25519.pem`` for signing keys and ``<agency>.<hex>.x25519.pem`` for the
X25519 keys that open fields sealed to the agency; public halves end in ``.pub.pem``.
"""

from __future__ import annotations

from pathlib import Path

from broker.errors import KeyFileError


def _private(key_dir: Path, agency: str, kind: str) -> list[Path]:
    return sorted(
        (p for p in key_dir.glob(f"{agency}.*.{kind}.pem") if not p.name.endswith(".pub.pem")),
        key=lambda p: p.stat().st_mtime,
    )


def signing_key_file(key_dir: Path, agency: str) -> Path:
    """The newest private signing key file of ``agency`` in ``key_dir``."""
    candidates = _private(key_dir, agency, "ed25519")
    if not candidates:
        raise KeyFileError(
            f"no signing key for agency {agency!r} in {key_dir} "
            f"(expected {agency}.<key>.ed25519.pem; create one with `msht keys generate`)"
        )
    return candidates[-1]


def signing_key_files(key_dir: Path, agency: str) -> list[Path]:
    """The private signing key files of ``agency`` (oldest first; several after a rotation)."""
    return _private(key_dir, agency, "ed25519")


def encryption_key_files(key_dir: Path, agency: str) -> list[Path]:
    """The X25519 private key files of ``agency`` (oldest first; several during a rollover)."""
    return _private(key_dir, agency, "x25519")
