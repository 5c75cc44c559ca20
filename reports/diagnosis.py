"""What happened to a run or a condition, in one named diagnosis, from documented rules over the paired
round-0-to-last-round changes the probes already measure (each with a 95% CI).

Five signals feed the rules; each reads one or two probe measurements (the change of the last round against
round 0, paired over the same items) and has a direction:

- up: the 95% CI lies above 0; down: it lies below 0; flat: it contains 0;
- missing: the probe was not run, or its change has no CI (e.g. a single round).

The test-accuracy signal reads the greedy and the pass@1 change: down when either is down and neither is up,
up when either is up and neither is down, flat when every one measured is flat, and "mixed" when they point
opposite ways. `RULES` is evaluated in order: the diagnosis is the first rule that applies, `also` names the
later ones that apply too, and `not_checked` the ones that could not be checked because a measurement they
need is missing (the rule then does not apply). docs/diagnosis.md lists the rules.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

from probes import Measurement
from reports.model import Change, Diagnosis, Direction

ACC, CW, ENT, JS, NLL = "accuracy", "confident_wrong", "entropy", "answer_js", "reference_nll"


@dataclass(frozen=True)
class Signal:
    key: str
    label: str
    sources: tuple[tuple[str, str], ...]  # (probe id, measurement name); the first one measured leads


SIGNALS = (
    Signal(ACC, "test accuracy", (("drift.accuracy", "test.greedy.delta_vs_round0"),
                                  ("drift.accuracy", "test.pass1.delta_vs_round0"))),
    Signal(CW, "confident-wrong rate", (("cw.rate", "rate.delta_vs_round0"),)),
    Signal(ENT, "answer entropy", (("attractor.answer_entropy", "entropy.delta_vs_round0"),)),
    Signal(JS, "answer JS excess", (("drift.answer_js", "js_vs_round0.excess"),)),
    Signal(NLL, "reference NLL/token", (("drift.reference_nll", "nll_per_token.delta_vs_round0"),)),
)
LABELS = {s.key: s.label for s in SIGNALS}
PROBES = tuple(sorted({probe for s in SIGNALS for probe, _ in s.sources}))  # the probes the rules read
OTHERS = (CW, ENT, JS, NLL)

State = dict[str, str | None]  # signal key -> "up", "down", "flat", "mixed" or None (missing)


@dataclass(frozen=True)
class Rule:
    """A named diagnosis: `applies(state)` over the signal directions; `needs` are the signals it must
    have measured (one missing: the rule does not apply); `quotes(state)` the signals its sentence cites."""

    name: str
    severity: Literal["concern", "good", "neutral", "unknown"]
    description: str  # exactly what it checks, in words (docs/diagnosis.md repeats it)
    gloss: str  # what it means, the start of the explanation sentence
    needs: tuple[str, ...]
    applies: Callable[[State], bool]
    quotes: Callable[[State], tuple[str, ...]]


def _moved(state: State, keys=OTHERS) -> tuple[str, ...]:
    return tuple(k for k in keys if state.get(k) in ("up", "down"))


def _crank(s: State) -> bool:
    return s[ACC] == "down" and s[CW] == "up" and s[ENT] == "down"


def _sharpening(s: State) -> bool:
    return s[ACC] == "flat" and s[ENT] == "down"


def _drift(s: State) -> bool:
    return s[ACC] == "flat" and "up" in (s[JS], s[NLL])


def _stable(s: State) -> bool:
    return s[ACC] == "flat" and not _moved(s)


RULES: tuple[Rule, ...] = (
    Rule("crank attractor", "concern",
         "test accuracy down, confident-wrong rate up and answer entropy down",
         "the loop converges on wrong answers it is sure of", (ACC, CW, ENT), _crank, lambda s: (ACC, CW, ENT)),
    Rule("degrading", "concern",
         "test accuracy down, and not both confident-wrong rate up and answer entropy down (not a crank attractor)",
         "the loop loses accuracy", (ACC,), lambda s: s[ACC] == "down" and not (s[CW] == "up" and s[ENT] == "down"),
         lambda s: (ACC,) + _moved(s)),
    Rule("improving", "good",
         "test accuracy up and confident-wrong rate not up (flat or down)",
         "the loop gains accuracy without growing confident errors", (ACC, CW),
         lambda s: s[ACC] == "up" and s[CW] in ("flat", "down"), lambda s: (ACC, CW)),
    Rule("improving with confident-wrong growth", "neutral",
         "test accuracy up and confident-wrong rate up",
         "the loop gains accuracy but is confidently wrong on more pool questions", (ACC, CW),
         lambda s: s[ACC] == "up" and s[CW] == "up", lambda s: (ACC, CW)),
    Rule("sharpening", "neutral",
         "test accuracy flat and answer entropy down (collapse without accuracy loss)",
         "the samples collapse onto fewer answers while accuracy holds", (ACC, ENT), _sharpening,
         lambda s: (ACC, ENT)),
    Rule("drift without accuracy change", "neutral",
         "test accuracy flat, and answer JS excess up or reference NLL/token up",
         "the model's answers or its fit to fixed texts move away from round 0 while accuracy holds", (ACC,),
         _drift,
         lambda s: (ACC,) + tuple(k for k in (JS, NLL) if s[k] is not None)),
    Rule("shift without accuracy change", "neutral",
         "test accuracy flat and some other measured change off 0 that the rules above do not name "
         "(confident-wrong rate up or down, answer entropy up, answer JS excess down, reference NLL/token down)",
         "accuracy holds while another headline moves", (ACC,),
         lambda s: s[ACC] == "flat" and bool(_moved(s)) and not _sharpening(s) and not _drift(s),
         lambda s: (ACC,) + _moved(s)),
    Rule("stable", "good",
         "test accuracy flat and every other measured change (confident-wrong rate, answer entropy, answer JS "
         "excess, reference NLL/token) flat",
         "nothing measurable moved", (ACC,), _stable, lambda s: (ACC,) + tuple(k for k in OTHERS if s[k])),
)
UNDETERMINED = ("undetermined", ("fewer than two rounds, no test-accuracy change measured, the greedy and "
                 "pass@1 changes pointing opposite ways, or no rule applies because a measurement it needs is missing"))


def direction(m: Measurement | None) -> Direction | None:
    """up / down / flat from a change's 95% CI against 0; None when it has no value or no CI, or is degenerate
    (it has nothing to detect, so "flat" would claim a stability it cannot show)."""
    if m is None or m.value is None or m.ci_low is None or m.ci_high is None or m.degenerate is not None:
        return None
    return "up" if m.ci_low > 0 else "down" if m.ci_high < 0 else "flat"


def change(m: Measurement) -> Change:
    return Change(probe=m.probe, measurement=m.name, value=m.value, ci_low=m.ci_low, ci_high=m.ci_high,
                  direction=direction(m), degenerate=m.degenerate)


def signals(measurements: Sequence[Measurement]) -> tuple[State, dict[str, list[Measurement]]]:
    """Each signal's direction (None: missing) and the measurements it read (those with a CI)."""
    by_key = {(m.probe, m.name): m for m in measurements}
    state: State = {}
    used: dict[str, list[Measurement]] = {}
    for sig in SIGNALS:
        # direction(None) is None: every one found is a Measurement
        found = cast("list[Measurement]", [m for src in sig.sources if direction(m := by_key.get(src)) is not None])
        dirs = {direction(m) for m in found}
        used[sig.key] = found
        state[sig.key] = (None if not dirs else "mixed" if {"up", "down"} <= dirs else
                          "up" if "up" in dirs else "down" if "down" in dirs else "flat")
    return state, used


def _num(x: float | None, signed: bool = False) -> str:
    return "-" if x is None else (f"{x:+.3g}" if signed else f"{x:.3g}")


def quote(m: Measurement) -> str:
    return f"{_num(m.value, True)} [{_num(m.ci_low)}, {_num(m.ci_high)}]"


def _phrase(key: str, state: State, used: dict[str, list[Measurement]]) -> str:
    ms = used[key]
    if not ms:
        return f"{LABELS[key]} not measured"
    word = state[key]
    if len(ms) == 1:
        return f"{LABELS[key]} {word} ({quote(ms[0])})"
    parts = "; ".join(f"{m.name.split('.')[1].replace('pass1', 'pass@1')} {quote(m)}" for m in ms)
    return f"{LABELS[key]} {word} ({parts})"


def _missing(rule: Rule, state: State) -> list[str]:
    return [k for k in rule.needs if state[k] is None]


def diagnose(measurements: Sequence[Measurement], rounds: Sequence[int]) -> Diagnosis:
    """The diagnosis of a section from its probe measurements (ProbeResults.measurements) and its rounds."""
    rounds = list(rounds)
    span: dict[str, Any] = {"from_round": rounds[0] if rounds else None, "to_round": rounds[-1] if rounds else None}
    state, used = signals(measurements)

    def undetermined(why: str, quoted: Sequence[str] = ()) -> Diagnosis:
        ev = [change(m) for k in quoted for m in used[k]]
        return Diagnosis(rule="undetermined", severity="unknown", explanation=why, evidence=ev, **span)

    if len(rounds) < 2:
        return undetermined("Only round 0 is complete, so nothing can have changed yet.")
    if state[ACC] is None:
        return undetermined("No test-accuracy change was measured (drift.accuracy "
                            "test.greedy.delta_vs_round0 or test.pass1.delta_vs_round0), and every rule needs it.")
    if state[ACC] == "mixed":
        return undetermined(f"The greedy and pass@1 accuracy changes disagree: "
                            f"{_phrase(ACC, state, used)}.", (ACC,))
    hits, not_checked = [], []
    for rule in RULES:
        if _missing(rule, state):
            if _could_apply(rule, state):  # the missing measurement decides it: say so
                not_checked.append(rule.name)
        elif rule.applies(state):
            hits.append(rule)
    if not hits:
        why = "; ".join(f"{n} needs {', '.join(LABELS[k] for k in _missing(_rule(n), state))}" for n in not_checked)
        return undetermined(f"{_phrase(ACC, state, used).capitalize()}, but no rule applies "
                            f"({why or 'no rule fits'}).", (ACC,)).model_copy(update={"not_checked": not_checked})
    rule = hits[0]
    quoted = [k for k in dict.fromkeys(rule.quotes(state))]
    sentence = f"{rule.gloss[0].upper()}{rule.gloss[1:]}: " + ", ".join(_phrase(k, state, used) for k in quoted)
    unmeasured = [LABELS[k] for k in OTHERS if state[k] is None and rule.name in ("stable", "degrading")]
    sentence += (f" ({', '.join(unmeasured)} not measured)" if unmeasured else "") + \
        f"; changes from round {rounds[0]} to round {rounds[-1]}, 95% CIs."
    return Diagnosis(rule=rule.name, severity=rule.severity, explanation=sentence,
                     evidence=[change(m) for k in quoted for m in used[k]], also=[r.name for r in hits[1:]],
                     not_checked=not_checked, **span)


def _rule(name: str) -> Rule:
    return next(r for r in RULES if r.name == name)


def _could_apply(rule: Rule, state: State) -> bool:
    """Whether some value of the rule's missing measurements would make it apply."""
    missing = _missing(rule, state)

    def fill(i: int, s: State) -> bool:
        if i == len(missing):
            return rule.applies(s)
        return any(fill(i + 1, {**s, missing[i]: d}) for d in ("up", "down", "flat"))

    return fill(0, state)


def rule_table() -> list[tuple[str, str]]:
    """(name, condition) of every rule in evaluation order, undetermined last (for docs and the report)."""
    return [(r.name, r.description) for r in RULES] + [UNDETERMINED]
