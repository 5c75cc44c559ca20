"""Where a tiny base model comes from, without torch (the cost estimate asks before any work): its cache key,
and the base that ships with the package (`shipped/KEY/`, laid out like a cache entry; see
harness.models.tiny.pretrain and `python -m harness.app.ship_base`)."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel

CACHE_VERSION = 1  # bump when a code change alters what base training produces
SHIPPED_DIR = Path(__file__).with_name("shipped")


def base_key(domain: BaseModel, model: BaseModel, base: BaseModel, seed: int) -> str:
    """The cache key of the base these settings train: a hash of everything that decides its weights."""
    from harness.config import config_hash

    return config_hash(domain, model, base, seed, f"tiny-v{CACHE_VERSION}")[:16]


def shipped_base_enabled() -> bool:
    """LOOPPROBE_SHIPPED_BASE=0 trains the default base on this machine instead of loading the shipped one."""
    return os.environ.get("LOOPPROBE_SHIPPED_BASE", "1") != "0"


def is_shipped(key: str) -> bool:
    """True when a run with this key loads the shipped base instead of training one."""
    return shipped_base_enabled() and (SHIPPED_DIR / key / "base.json").is_file()
