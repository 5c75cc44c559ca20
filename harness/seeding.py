"""Seeds derived by name, so each part of a run has its own stream and adding one part moves no other."""

from __future__ import annotations

import hashlib


def derive_seed(seed: int, *names: object) -> int:
    """A 63-bit seed from a master seed and a path of names: derive_seed(7, "round", 2, "sample")."""
    key = "/".join([str(seed), *map(str, names)]).encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "little") >> 1
