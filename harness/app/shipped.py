"""The suites shipped with loopprobe, found by name.

They are the repository's top-level `suites/*.toml`, installed as package data of `harness.suites` (setup.py
maps the folder there: no top-level `suites` package lands in site-packages), so an editable install, a
wheel and a plain checkout all find them through `importlib.resources`. This module imports nothing heavy:
`loopprobe suites` lists them without loading torch.
"""

from __future__ import annotations

import difflib
import tomllib
from importlib import resources
from pathlib import Path

PACKAGE = "harness.suites"
DEFAULT = "smoke"
# smoke and the negative control first: the cheapest checks of the whole path and of the false-alarm control;
# then the findings CI keeps checking (a budget of 3000 s runs the first five)
ORDER = ("smoke", "null_loop", "planted_misconception", "lmsi", "self_check", "noise_vs_systematic", "replace_vs_accumulate",
         "competence_threshold", "verifier_vs_self", "smollm2_cpu", "smollm2_lmsi")


def suites_dir() -> Path:
    """The folder that holds the shipped suite files."""
    try:
        folder = resources.files(PACKAGE)
    except ModuleNotFoundError:  # a checkout on sys.path without an install: the folder beside harness/
        return Path(__file__).resolve().parents[1] / "suites"
    return Path(str(folder))  # installs are unpacked (pip never runs a wheel zipped), so this is a real folder


def shipped_suites() -> dict[str, Path]:
    """Shipped suite name -> its file, in verify-suites' order (then by name)."""
    found = {p.stem: p for p in suites_dir().glob("*.toml")}
    return {name: found[name] for name in sorted(found, key=lambda n: (ORDER.index(n) if n in ORDER else 99, n))}


def suite_info(path: Path) -> dict:
    """The `[suite]` table of a suite file, read without validating the rest (fast; for listing)."""
    with path.open("rb") as f:
        return tomllib.load(f).get("suite", {})


def _looks_like_a_path(text: str) -> bool:
    return "/" in text or "\\" in text or text.endswith(".toml")


def resolve_suite(arg: str | Path) -> Path:
    """A suite argument as the commands take it: a file that exists wins; otherwise a shipped suite's name.

    A bare name that is neither raises SuiteError naming the nearest shipped suite; so does a path that does not
    exist (`cannot read`, plus the shipped suite of that name if there is one). A path that exists but is not
    a file is returned as it is, for `load_suite` to say what is wrong with it."""
    text = str(arg)
    path = Path(text)
    if path.is_file():
        return path
    known = shipped_suites()
    if text in known:
        return known[text]
    if path.exists():
        return path
    # imported only on the error path: harness.app.suite imports torch
    from harness.app.suite import SuiteError

    if _looks_like_a_path(text):
        hint = (f"; did you mean the shipped suite {path.stem!r}?" if path.stem in known
                else "; pass a suite file or a shipped suite's name (`loopprobe suites` lists them)")
        raise SuiteError(f"{text}: cannot read (no such file){hint}")
    near = difflib.get_close_matches(text, known, n=1)
    raise SuiteError(f"no shipped suite {text!r}" + (f"; did you mean {near[0]!r}?" if near else
                                                    f"; shipped: {', '.join(known)}"))
