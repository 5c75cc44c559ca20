"""Parameter counts and shapes of a suite's model without loading its weights (for the cost estimate):
the embedded model from its config, a transformers directory from config.json or safetensors headers, a
packaged GGUF from its tensor shapes (a small header reader: 0.09 s where the `gguf` library takes 4 s)."""

from __future__ import annotations

import functools
import json
import math
import mmap
import struct
from pathlib import Path
from typing import cast

TINY_VOCAB = 100  # CharTokenizer: pad, bos, eos, unk + 96 characters


def tiny_parameters(model) -> int:
    """Parameters of the embedded Llama: tied embeddings, per layer q/k/v/o, gate/up/down and two norms."""
    h, i = model.hidden_size, model.intermediate_size
    return TINY_VOCAB * h + model.num_layers * (4 * h * h + 3 * h * i + 2 * h) + h


def hf_size(model, cache_dir: Path | None = None) -> tuple[int | None, dict, int]:
    """(parameters, shape, LoRA adapter parameters) of an hf model without loading it: from import.json
    (a GGUF import), safetensors headers, config.json, or the GGUF's tensor shapes; (None, {}, 0) when none
    of them is there."""
    try:
        directory = Path(model.path).expanduser() if model.path else _imported_gguf(model, cache_dir)
        directory = directory if directory is not None and directory.is_dir() else None
    except (OSError, ValueError, RuntimeError):  # a path no filesystem holds
        directory = None
    config = _read_json(directory / "config.json") if directory else None
    shape = {}
    if config:
        cfg = config.get("text_config", config)
        shape = {"hidden": cfg.get("hidden_size"), "layers": cfg.get("num_hidden_layers"),
                 "heads": cfg.get("num_attention_heads"), "intermediate": cfg.get("intermediate_size"),
                 "vocab": cfg.get("vocab_size")}
        if not all(isinstance(v, int) and v > 0 for v in shape.values()):
            shape = {}
    n = None
    if directory:
        n = (_read_json(directory / "import.json") or {}).get("n_parameters") or _safetensors_parameters(directory)
    if n is None and shape:
        read = cast(dict, config)  # a shape was read from it: not None
        n = _llama_parameters(read.get("text_config", read))
    if n is None and model.gguf_package:
        n, shape = _gguf_size(model.gguf_package)
    lora = 0
    if n is not None and model.lora is not None:
        if shape:  # default targets (q_proj, v_proj): r x (in + out) each, per layer
            lora = shape["layers"] * 2 * model.lora.r * 2 * shape["hidden"]
            if model.lora.target_modules:
                lora = lora * max(1, len(model.lora.target_modules)) // 2
        else:
            lora = max(1, n // 100)
    return (int(n) if n is not None else None), shape, lora


def _llama_parameters(cfg: dict) -> int | None:
    try:
        h, layers, inter, vocab = (int(cfg[k]) for k in ("hidden_size", "num_hidden_layers", "intermediate_size",
                                                          "vocab_size"))
        heads = int(cfg["num_attention_heads"])
        kv = int(cfg.get("num_key_value_heads") or heads)
        head_dim = int(cfg.get("head_dim") or h // heads)
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return None
    embed = vocab * h * (1 if cfg.get("tie_word_embeddings", True) else 2)
    attn = h * heads * head_dim * 2 + h * kv * head_dim * 2
    return embed + layers * (attn + 3 * h * inter + 2 * h) + h


def _safetensors_parameters(directory: Path) -> int | None:
    """Sum of tensor sizes from the JSON headers of *.safetensors files (8-byte length, then the header)."""
    total = 0
    try:
        files = sorted(directory.glob("*.safetensors"))
        if not files:
            return None
        for f in files:
            with f.open("rb") as fh:
                (size,) = struct.unpack("<Q", fh.read(8))
                if size > 100 * 2**20:
                    return None
                header = json.loads(fh.read(size))
            total += sum(math.prod(t["shape"]) for k, t in header.items() if k != "__metadata__")
    except (OSError, ValueError, KeyError, TypeError, struct.error):
        return None
    return total


def _gguf_size(package: str) -> tuple[int | None, dict]:
    """Parameters and shape of the GGUF a package ships, from its header (tensor shapes and the
    architecture's metadata); (None, {}) when it is not installed or not readable."""
    if not package.isidentifier():  # find_spec imports the parents of a dotted name: never for a guess
        return None, {}
    try:
        from harness.models.hf.gguf import find_packaged_gguf

        meta, dims = read_gguf_header(find_packaged_gguf(package))
    except Exception:  # noqa: BLE001 (not installed, not readable: the size stays unknown)
        return None, {}
    arch = meta.get("general.architecture", "llama")
    shape = {"hidden": meta.get(f"{arch}.embedding_length"), "layers": meta.get(f"{arch}.block_count"),
             "heads": meta.get(f"{arch}.attention.head_count"), "intermediate": meta.get(f"{arch}.feed_forward_length"),
             "vocab": meta.get(f"{arch}.vocab_size")}
    if not all(isinstance(v, int) and v > 0 for v in shape.values()):
        shape = {}
    return sum(math.prod(d) for d in dims), shape


_GGUF_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}


@functools.lru_cache(maxsize=8)
def read_gguf_header(path: Path) -> tuple[dict, list[tuple[int, ...]]]:
    """(scalar and string metadata, tensor shapes) of a GGUF file (format v2/v3), read from its header only."""
    with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        if buf[:4] != b"GGUF":
            raise ValueError(f"{path}: not a GGUF file")
        pos = 8
        n_tensors, n_kv = struct.unpack_from("<QQ", buf, pos)
        pos += 16

        def string(at: int) -> tuple[str, int]:
            (n,) = struct.unpack_from("<Q", buf, at)
            return bytes(buf[at + 8:at + 8 + n]).decode("utf-8", "replace"), at + 8 + n

        def value(kind: int, at: int):
            if kind in _GGUF_SCALARS:
                fmt = _GGUF_SCALARS[kind]
                return struct.unpack_from(fmt, buf, at)[0], at + struct.calcsize(fmt)
            if kind == 8:
                return string(at)
            if kind == 9:
                sub, count = struct.unpack_from("<IQ", buf, at)
                at += 12
                if sub in _GGUF_SCALARS:
                    return None, at + count * struct.calcsize(_GGUF_SCALARS[sub])
                for _ in range(count):
                    _, at = value(sub, at)
                return None, at
            raise ValueError(f"{path}: unknown GGUF value type {kind}")

        meta = {}
        for _ in range(n_kv):
            key, pos = string(pos)
            (kind,) = struct.unpack_from("<I", buf, pos)
            meta[key], pos = value(kind, pos + 4)
        dims = []
        for _ in range(n_tensors):
            _, pos = string(pos)
            (n_dims,) = struct.unpack_from("<I", buf, pos)
            dims.append(struct.unpack_from(f"<{n_dims}Q", buf, pos + 4))
            pos += 4 + 8 * n_dims + 12  # dims, then type (uint32) and offset (uint64)
    return meta, dims


def _imported_gguf(model, cache_dir: Path | None = None) -> Path | None:
    """The transformers directory a GGUF package was imported into, if it was."""
    if not model.gguf_package or not model.gguf_package.isidentifier():
        return None
    import importlib.metadata

    from harness.models.hf.gguf import default_models_dir

    try:
        version = importlib.metadata.version(model.gguf_package.replace("_", "-"))
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    for root in (cache_dir, default_models_dir()):
        target = Path(root) / f"{model.gguf_package}-{version}-{model.dtype}" if root else None
        if target is not None and (target / "import.json").is_file():
            return target
    return None


def _read_json(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _hf_device(spec: str) -> str:
    if spec == "cpu":
        return "cpu"
    import torch

    return "gpu" if torch.cuda.is_available() else "cpu"
