"""What a CI pipeline reads: JUnit XML (one testcase per gate) and a Markdown step summary."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from harness.artifacts import write_atomic


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.4g}"


def junit_xml(outcome) -> str:
    """One testsuite per suite outcome (one, or a list of them), one testcase per gate."""
    outcomes = outcome if isinstance(outcome, list) else [outcome]
    gates = [g for o in outcomes for g in o.gates]
    failures = sum(not g.passed for g in gates) + sum(len(o.incomplete) for o in outcomes)
    tests = len(gates) + sum(len(o.incomplete) for o in outcomes)
    suites = ET.Element("testsuites", name="loopprobe", tests=str(tests), failures=str(failures))
    for o in outcomes:
        _testsuite(suites, o)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True)


def _testsuite(parent: ET.Element, outcome) -> None:
    failures = sum(not g.passed for g in outcome.gates) + len(outcome.incomplete)
    suite = ET.SubElement(parent, "testsuite", name=outcome.suite, tests=str(len(outcome.gates) + len(outcome.incomplete)),
                          failures=str(failures), errors="0", skipped="0")
    for condition, why in outcome.incomplete.items():  # a run that did not finish fails even with no gates
        case = ET.SubElement(suite, "testcase", classname=f"loopprobe.{outcome.suite}.{condition}", name="complete")
        ET.SubElement(case, "failure", message=why, type="RunIncomplete").text = why
    for g in outcome.gates:
        case = ET.SubElement(suite, "testcase", classname=f"loopprobe.{outcome.suite}.{g.condition}",
                             name=g.gate.describe())
        if not g.passed:
            ET.SubElement(case, "failure", message=g.message, type="GateFailed").text = g.message
        else:
            ET.SubElement(case, "system-out").text = g.message


def summary_markdown(outcome) -> str:
    failed = [g for g in outcome.gates if not g.passed]
    verdict = "FAILED" if failed or outcome.incomplete else "PASSED"
    lines = [f"## loopprobe suite `{outcome.suite}`: {verdict}", "",
             f"{len(outcome.gates) - len(failed)} of {len(outcome.gates)} gates hold; seeds {outcome.seeds}.", ""]
    lines += [f"- ❌ **{c} is incomplete**: {why}; no gate on it holds" for c, why in outcome.incomplete.items()]
    if outcome.gates:
        lines += ["| | condition | gate | value | 95% CI |", "|---|---|---|---|---|"]
        for g in outcome.gates:
            m = g.measurement
            ci = "-" if m.ci_low is None else f"[{_fmt(m.ci_low)}, {_fmt(m.ci_high)}]"
            lines.append(f"| {'✅' if g.passed else '❌'} | {g.condition} | `{g.gate.describe()}` | "
                         f"{_fmt(m.value)} | {ci} |")
        lines.append("")
    for condition, results in outcome.conditions.items():
        firing = [m for m in results.measurements if m.fires]
        lines += [f"### {condition}: {results.correction.describe()}; {len(results.measurements)} measurements", ""]
        lines += [f"- `{m.probe}` {m.name} = {_fmt(m.value)} "
                  f"{'' if m.ci_low is None else f'[{_fmt(m.ci_low)}, {_fmt(m.ci_high)}]'} ({m.concern})"
                  for m in firing]
        lines.append("")
    return "\n".join(lines)


def write_junit(path: Path, outcome) -> None:
    write_atomic(Path(path), junit_xml(outcome))


def write_summary(path: Path, outcome) -> None:
    write_atomic(Path(path), summary_markdown(outcome))
