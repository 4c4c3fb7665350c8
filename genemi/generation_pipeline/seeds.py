"""Seeds derived from data, never from time or order: a record always gets the same seed, wherever and with
whatever else it is processed."""

from __future__ import annotations

import hashlib


def derive_seed(global_seed: int, key: str) -> int:
    """A 63-bit seed from (global seed, id): the same variation or negative always gets the same seed."""
    digest = hashlib.sha256(f"{global_seed}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)
