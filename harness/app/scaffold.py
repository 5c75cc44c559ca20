"""`loopprobe new-probe`: a working probe file and its controls, ready to edit.

`write_probe_scaffold(name, family, directory)` writes `<name>.py`, a probe of `family` that measures a real
per-question quantity with `self.tracked` (TODO comments mark where the author's logic goes), and
`test_<name>.py`, its positive control (a synthetic run with the effect planted: it fires) and negative
control (exchangeable rounds: it stays quiet). Both pass as generated (`pytest` in that folder), and the
positive control fails once the measurement no longer measures anything.
"""

from __future__ import annotations

import importlib.util
import keyword
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from string import Template

from probes._api import ENTRY_POINT_GROUP

ID_PREFIX = "custom"  # generated ids are "custom.<name>"; the file says to prefix them with the package's name


@dataclass(frozen=True)
class _Family:
    """What a generated probe of one family measures, and the synthetic runs of its controls."""

    description: str  # the docstring's first paragraph: what it measures and why a change is a concern
    reads: str  # the `reads` tuple, as Python
    table: str  # the arguments of run.samples after the round: which split and decoding it reads
    quantity: str  # the body of per_question after `table = ...`, ending in its return
    measurement: str
    concern: str  # "increase" or "decrease"
    planted: str  # the positive control's rounds, as Python
    planted_note: str  # what they plant
    clean: str  # the negative control's rounds, as Python
    imports: str = "Probe, RunView, probe"
    params: str = ""  # a Params class, if the probe has parameters


_CONFIDENT = "[RoundSpec(p_correct=p, majority_share=0.8) for p in (0.7, 0.5, 0.35)]"
FAMILIES: dict[str, _Family] = {
    "drift": _Family(
        description="Share of test questions the greedy decoding answers right; a fall means the loop\n"
                    "    is losing the skill it trains on.",
        reads='("eval",)', table=', "test", "greedy"',
        quantity="            return table.correct[:, 0].astype(float)  # 1 where the greedy answer is right",
        measurement="test_accuracy", concern="decrease",
        planted="[RoundSpec(test_p=p) for p in (0.7, 0.55, 0.4)]", planted_note="test accuracy falls",
        clean="clean_rounds(3)"),
    "attractors": _Family(
        description="Vote share of each pool question's most common answer; a rise means the\n"
                    "    samples collapse onto fewer answers, an attractor forming when accuracy\n"
                    "    does not rise with it.",
        reads='("samples",)', table="",
        quantity="            _, share = stats.row_mode(table.answers, table.parsed)\n"
                 "            return share",
        measurement="majority_share", concern="increase", imports="Probe, RunView, probe, stats",
        planted="[RoundSpec(majority_share=s) for s in (0.4, 0.6, 0.9)]",
        planted_note="the samples of each question concentrate on one answer",
        clean="clean_rounds(3)"),
    "confident_wrong": _Family(
        description="Share of pool questions whose majority answer is wrong with a vote share of at\n"
                    "    least tau; a rise means the loop manufactures wrong answers it will train on.",
        reads='("samples",)', table="",
        quantity="            majority, share = stats.row_mode(table.answers, table.parsed)\n"
                 "            wrong = majority != table.truth\n"
                 "            return (wrong & (share >= self.params.tau)).astype(float)",
        measurement="confident_wrong", concern="increase", imports="Probe, RunView, probe, stats",
        params="    class Params(Probe.Params):  # parameters a suite can set\n"
               "        tau: float = 0.6  # a majority with at least this vote share is confident\n\n"
               "    params: Params\n\n",
        planted=_CONFIDENT, planted_note="majorities stay confident while accuracy falls",
        clean="clean_rounds(3, p_correct=0.5, majority_share=0.8)"),
    "forecast": _Family(
        description="Share of pool questions whose selected training answer is wrong: the\n"
                    "    label noise the next round trains on. A rise forecasts the loop learning\n"
                    "    wrong answers.",
        reads='("samples", "selected")', table="",
        quantity="            truth = dict(zip(table.question_ids, table.truth))\n"
                 "            wrong = {row[\"question_id\"] for row in run.selected(r)\n"
                 "                     if answer_code(row[\"answer\"]) != truth[row[\"question_id\"]]}\n"
                 "            return [float(q in wrong) for q in ids]",
        measurement="selected_wrong", concern="increase", imports="Probe, RunView, answer_code, probe",
        planted=_CONFIDENT, planted_note="confident majorities (selected) are wrong more often",
        clean="clean_rounds(3, p_correct=0.5, majority_share=0.8)"),
}

PROBE_FILE = Template('''"""$cls: a $title probe (generated by `loopprobe new-probe`).

Its controls are in test_$name.py: run `pytest` in this folder.
TODO: describe what it measures and why.
"""

from probes import $imports, tracked_names


@probe
class $cls(Probe):
    """$description

    Per round with a bootstrap CI over questions, and paired changes against round 0 and
    the previous round (concern: $concern).
    """

    id = "$probe_id"  # TODO: prefix the id with your package's name
    family = "$family"
    reads = $reads  # artifacts read: samples, eval, reference, selected
    measurements = tracked_names("$measurement")  # the names it produces: gates on others are refused

$params    def measure(self, run: RunView):
        # the same questions, in one order, every round: rounds pair item by item
        ids = run.samples(run.rounds[0]$table).question_ids

        def per_question(r: int):
            # TODO: your quantity: a number per question of round r, in ids' order
            table = run.samples(r$table)
$quantity

        # TODO: concern = the worrying direction: "increase", "decrease" or "either"
        return self.tracked("$measurement", run, per_question, ids, concern="$concern")
''')

TEST_FILE = Template('''"""Controls of the probe in $name.py.

It fires on a synthetic run with its effect planted (positive control) and stays quiet
on exchangeable rounds (negative control).
"""

from pathlib import Path

from probes import RunView, load_probes
from probes.testing import RoundSpec, clean_rounds, write_synthetic_run

# the probe the file defines (loaded by path: no package needed)
(PROBE,) = load_probes([Path(__file__).with_name("$name.py")])
SIZES = {"n_pool": 150, "n_test": 150, "n_ood": 20, "n_ref": 10}  # questions per split


def measurements(path):
    return {m.name: m for m in PROBE().measure(RunView(path))}


def test_fires_when_the_effect_is_planted(tmp_path):
    # TODO: plant your probe's effect: one RoundSpec per round (probes.testing)
    # planted here: $planted_note
    rounds = $planted
    found = measurements(write_synthetic_run(tmp_path / "planted", rounds, **SIZES))
    change = found["$measurement.delta_vs_round0"]
    assert change.fires and change.value $sign 0, change


def test_stays_quiet_on_a_clean_run(tmp_path):
    # the same model every round: exchangeable draws
    rounds = $clean
    found = measurements(write_synthetic_run(tmp_path / "clean", rounds, **SIZES))
    assert not [name for name, m in found.items() if m.fires]
''')


class ScaffoldError(ValueError):
    """A bad name, family or target: one line naming the value and what would do."""


def _check_identifier(name: str) -> None:
    if not (name.isidentifier() and name == name.lower()) or keyword.iskeyword(name):
        raise ScaffoldError(f"probe name {name!r}: not a lowercase Python identifier (letters, digits, "
                            "underscores; e.g. 'answer_flips')")


def check_name(name: str) -> None:
    """A ScaffoldError unless `name` can name the probe's files: a lowercase identifier that pytest will not
    collect and that shadows no importable module (pytest puts the test's folder first on sys.path)."""
    _check_identifier(name)
    if name.startswith("test"):
        raise ScaffoldError(f"probe name {name!r}: starts with 'test', so pytest would collect the probe file "
                            "as tests; choose another")
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        spec = None
    if spec is not None:
        raise ScaffoldError(f"probe name {name!r}: a module of that name exists ({spec.origin}), which the probe "
                            "file would shadow when its tests run; choose another")


def check_family(family: str) -> _Family:
    if family not in FAMILIES:
        raise ScaffoldError(f"unknown family {family!r}; choose one of: {', '.join(FAMILIES)}")
    return FAMILIES[family]


def class_name(name: str) -> str:
    """The probe class of a name: answer_flips -> AnswerFlips."""
    return "".join(part[:1].upper() + part[1:] for part in name.split("_")) or name


def probe_files(name: str, family: str) -> dict[str, str]:
    """The files of a new probe, by file name: `<name>.py` and `test_<name>.py`."""
    check_name(name)
    f = check_family(family)
    fields = {**asdict(f), "name": name, "family": family,
              "cls": class_name(name), "probe_id": f"{ID_PREFIX}.{name}", "title": family.replace("_", "-"),
              "sign": "<" if f.concern == "decrease" else ">"}
    return {f"{name}.py": PROBE_FILE.substitute(fields), f"test_{name}.py": TEST_FILE.substitute(fields)}


def write_probe_scaffold(name: str, family: str, directory: Path) -> list[Path]:
    """Write `<name>.py` (the probe) and `test_<name>.py` (its controls) into `directory` (made if needed)
    and return their paths. A ScaffoldError (a ValueError, one line) for a bad name or family, or when
    either file exists: it never overwrites, and writes nothing unless it can write both."""
    files = probe_files(name, family)
    directory = Path(directory)
    paths = [directory / file for file in files]
    for path in paths:
        if path.exists():
            raise ScaffoldError(f"{path}: already exists; new-probe never overwrites a file (choose another name "
                                "or directory)")
    directory.mkdir(parents=True, exist_ok=True)
    for path, text in zip(paths, files.values()):
        path.write_text(text)
    return paths


_MODULE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")


def entry_point_snippet(name: str, module: str) -> str:
    """The pyproject.toml lines that ship the probe `name` from the importable module `module` (e.g.
    "my_package.probes.answer_flips") under the entry-point group loopprobe reads."""
    _check_identifier(name)
    if not _MODULE.fullmatch(module):
        raise ScaffoldError(f"module {module!r}: not a dotted module name (e.g. 'my_package.probes.{name}')")
    return f'[project.entry-points."{ENTRY_POINT_GROUP}"]\n{name} = "{module}:{class_name(name)}"\n'
