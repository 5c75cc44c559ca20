"""The per-item records behind measurements: `probes.items.npz`, the sidecar of probes.json.

Why npz: numpy is already the probes' array type and a core dependency (parquet or arrow would add a 40 MB
wheel for what is a handful of float columns per measurement); an npz is a zip of one `.npy` member per
array, so a reader loads only the members it asks for, and it round-trips float64 exactly (a comparison of
identical items must give exactly 0). The zip is written with fixed member timestamps so the same results
give the same bytes.

Members: `index` (a JSON list: probe, measurement name, round, statistic, params, and the member names of its
ids and columns), `ids<j>` (item ids, unicode, shared by every record with the same ids) and `x<i>` (float64
columns [n, c]).
"""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np

from probes.stats import ItemValues

ITEMS_FILE = "probes.items.npz"
RecordKey = tuple[str, str, int]  # probe id, measurement name, round
_EPOCH = (1980, 1, 1, 0, 0, 0)


def encode(records: dict[RecordKey, ItemValues]) -> bytes:
    """The sidecar's bytes (deterministic for the same records)."""
    arrays: dict[str, np.ndarray] = {}
    id_members: dict[tuple[str, ...], str] = {}
    index = []
    for i, ((probe, name, r), items) in enumerate(sorted(records.items())):
        if items.ids not in id_members:
            id_members[items.ids] = f"ids{len(id_members)}"
            arrays[id_members[items.ids]] = np.array(items.ids, dtype=str) if items.ids else np.zeros(0, dtype="<U1")
        arrays[f"x{i}"] = np.ascontiguousarray(items.columns, dtype=np.float64)
        index.append({"probe": probe, "name": name, "round": r, "statistic": items.statistic,
                      "params": dict(items.params), "ids": id_members[items.ids], "x": f"x{i}"})
    arrays["index"] = np.array(json.dumps(index, sort_keys=True))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for member, arr in arrays.items():
            info = zipfile.ZipInfo(f"{member}.npy", date_time=_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            with z.open(info, "w") as f:
                np.lib.format.write_array(f, arr, allow_pickle=False)
    return buf.getvalue()


def decode(data: bytes) -> dict[RecordKey, ItemValues]:
    """Records from the sidecar's bytes (a ValueError when they are not a sidecar)."""
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            index = json.loads(str(npz["index"]))
            ids = {}
            out = {}
            for row in index:
                if row["ids"] not in ids:
                    ids[row["ids"]] = tuple(str(x) for x in npz[row["ids"]])
                out[(row["probe"], row["name"], int(row["round"]))] = ItemValues(
                    ids[row["ids"]], npz[row["x"]], row["statistic"], row["params"])
            return out
    except (KeyError, OSError, zipfile.BadZipFile, json.JSONDecodeError, TypeError) as e:
        raise ValueError(f"not a probes item sidecar ({e})") from None
