"""Reference pages generated from the code, as Markdown: the suite file (`suite_reference`: every key of
every section, from the pydantic models), the built-in probes (`probe_pages`: one page each, from their
metadata) and the artifact formats (`artifact_formats`: the row models and each registered domain's real
items). `pages()` maps each page's path under the docs folder to its text; the docs build adds them from its
hook (docs/hooks.py), so they follow the code and are never committed.

Every model table is announced by a line "Model: `Name` (`module`)", which tests/test_docs.py finds it by;
a default is rendered by `toml_value` (`unset` for None; `required` for a key without a default).
"""

from __future__ import annotations

import inspect
import io
import json
import re
import sys
import tempfile
import tokenize
import types
import typing
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

if TYPE_CHECKING:
    from probes import Probe

REQUIRED = "required"
_BOUNDS = (("gt", ">"), ("ge", "≥"), ("lt", "<"), ("le", "≤"), ("min_length", "min length"),
           ("max_length", "max length"))


def _join(parts: list[str]) -> str:
    return "\n\n".join(p for p in parts if p)


# ---------------------------------------------------------------- rendering


def toml_value(value: Any) -> str:
    """A value as a suite file writes it (None: `unset`; a model: its non-default keys as a table)."""
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json", exclude_defaults=True)
    if isinstance(value, list | tuple | set | frozenset):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        keys = [k if re.fullmatch(r"[A-Za-z0-9_-]+", str(k)) else json.dumps(str(k)) for k in value]
        return "{" + ", ".join(f"{k} = {toml_value(v)}" for k, v in zip(keys, value.values())) + "}"
    return str(value)


def default_text(field: FieldInfo) -> str:
    """A field's default as `toml_value` writes it, or `required`."""
    if field.default is PydanticUndefined and field.default_factory is None:
        return REQUIRED
    return toml_value(field.get_default(call_default_factory=True))


def _bare(annotation: Any) -> Any:
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    return annotation


def type_name(annotation: Any) -> str:
    """A readable type: `int`, `"a" | "b"`, `list[str] | None` (Annotated metadata dropped)."""
    a = _bare(annotation)
    origin, args = typing.get_origin(a), typing.get_args(a)
    if a is type(None):
        return "None"
    if origin is Literal:
        return " | ".join(json.dumps(x) if isinstance(x, str) else repr(x) for x in args)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(type_name(x) for x in args)
    if origin is not None:
        return f"{getattr(origin, '__name__', str(origin))}[{', '.join(type_name(x) for x in args)}]"
    return "Any" if a is Any else getattr(a, "__name__", str(a))


def _bounds(field: FieldInfo) -> str:
    parts = [f"{sym} {getattr(m, attr)}" for m in field.metadata for attr, sym in _BOUNDS
             if getattr(m, attr, None) is not None]
    return ", ".join(parts + [f"pattern `{m.pattern}`" for m in field.metadata if getattr(m, "pattern", None)])


def text(value: str) -> str:
    """The code's prose as Markdown: outside code spans, `<`, `*` and `|` are escaped."""
    parts = value.split("`")
    for i in range(0, len(parts), 2):
        parts[i] = parts[i].replace("<", "&lt;").replace("*", r"\*").replace("|", r"\|")
    return "`".join(parts)


def _doc(obj: Any) -> str:
    """An object's own docstring (a class's is not inherited), cleaned."""
    doc = obj.__dict__.get("__doc__") if isinstance(obj, type) else getattr(obj, "__doc__", None)
    return inspect.cleandoc(doc or "")


def _comments(model: type[BaseModel]) -> dict[str, str]:
    """The trailing `# comment` of each field's line in the source of the model and its bases (the row models
    describe their fields that way)."""
    out: dict[str, str] = {}
    for klass in reversed(model.__mro__):
        if not issubclass(klass, BaseModel) or klass is BaseModel:
            continue
        try:
            lines = inspect.getsource(klass).splitlines()
        except (OSError, TypeError):
            continue
        indent = len(lines[0]) - len(lines[0].lstrip())
        source = "\n".join(line[indent:] for line in lines)
        try:
            found = {t.start[0]: t.string.lstrip("# ").strip()
                     for t in tokenize.generate_tokens(io.StringIO(source).readline) if t.type == tokenize.COMMENT}
        except (tokenize.TokenError, SyntaxError):
            continue
        own = inspect.get_annotations(klass)
        for n, line in enumerate(source.splitlines(), 1):
            m = re.match(r" {4}(\w+)\s*:", line)
            if m and n in found and m.group(1) in own:
                out[m.group(1)] = found[n]
    return out


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models an annotation holds (`X`, `X | None`, `list[X]`, `dict[str, X]`, unions)."""
    a = _bare(annotation)
    if isinstance(a, type) and issubclass(a, BaseModel):
        return [a]
    return [m for arg in typing.get_args(a) for m in _models_in(arg)]


def model_table(model: type[BaseModel], heading: str = "", level: int = 3, seen: set | None = None,
                toml: bool = True) -> str:
    """The model's docstring and a table of its keys (type and bounds, default, description); then the same
    for each nested model not in `seen`, headed `[heading.key]` (`toml`) or `key`: `Model`."""
    seen = set() if seen is None else seen
    seen.add(model)
    comments = _comments(model)
    rows = ["| key | type | default | description |", "|---|---|---|---|"]
    nested: list[tuple[str, type[BaseModel]]] = []
    for name, field in model.model_fields.items():
        kind = f"`{type_name(field.annotation)}` {_bounds(field)}".strip()
        description = field.description or comments.get(name, "")
        rows.append(f"| `{name}` | {text(kind)} | `{default_text(field)}` | {text(description)} |")
        nested += [(name, m) for m in _models_in(field.annotation) if m not in seen]
    out = [text(_doc(model)), f"Model: `{model.__name__}` (`{model.__module__}`)", "\n".join(rows)]
    for name, sub in nested:
        if sub not in seen:
            key = f"{heading}.{name}" if heading else name
            title = f"`[{key}]`" if toml else f"`{name}`: `{sub.__name__}`"
            out += [f"{'#' * level} {title}", model_table(sub, key, min(level + 1, 6), seen, toml)]
    return _join(out)


# ---------------------------------------------------------------- the suite file

_INTRO = ("A suite is a TOML file. This page is generated from the models that validate it: every key, with its "
          "type, bounds, default and description. An unknown key is refused with the nearest valid one; numbers "
          "are strict (`true` is not a number, `\"0.5\"` is not one) and finite.")
_KINDS = {"domain": ("domain", "name", "arithmetic"), "model": ("backend", "backend", "tiny")}


def _registered_section(section: str) -> str:
    from harness.registry import registered

    kind, tag, default = _KINDS[section]
    out = [f"`{tag}` picks a registered {kind} (default `\"{default}\"`); the other keys are that {kind}'s."]
    for name, entry in registered(kind).items():
        out += [f"### `{tag} = \"{name}\"` {{ #{section}-{name} }}", model_table(entry.obj.config_class, section, 4)]
    return _join(out)


def _strategies() -> str:
    from harness.registry import registered

    out = []
    for kind, key, plural in (("amplifier", "amplify", "amplifiers"), ("selector", "select", "selectors"),
                              ("data_policy", "data_policy", "data policies")):
        selector = kind == "selector"
        rows = [f"| `{key} =` | description |" + (" uses labels | needs | `select_args` |" if selector else ""),
                "|---|---|" + ("---|---|---|" if selector else "")]
        for name, e in registered(kind).items():
            row = f"| `\"{name}\"` | {text(e.metadata.get('description', ''))} |"
            if selector:
                needs = ", ".join(f"`{c.__name__}`" for c in e.metadata.get("requires", ())) or "nothing"
                args = e.metadata.get("args")
                link = f"[`{args.__name__}`](#select-args-{name})" if args else "none"
                row += f" {'yes' if e.metadata.get('uses_labels') else 'no'} | {needs} | {link} |"
            rows.append(row)
        out += [f"### `{key}`: the registered {plural}", "\n".join(rows)]
    for name, e in registered("selector").items():
        if e.metadata.get("args") is not None:
            out += [f"### `select_args` of `select = \"{name}\"` {{ #select-args-{name} }}",
                    model_table(e.metadata["args"], "loop.select_args", 4)]
    rows = ["| `reward =` | description | uses labels | model needs | `reward_args` |", "|---|---|---|---|---|"]
    for name, e in registered("reward").items():
        args = e.metadata.get("args")
        link = f"[`{args.__name__}`](#reward-args-{name})" if args else "none"
        needs = ", ".join(f"`{m}`" for m in e.metadata.get("needs", ())) or "nothing"
        rows.append(f"| `\"{name}\"` | {text(e.metadata.get('description', ''))} | "
                    f"{'yes' if e.metadata.get('uses_labels') else 'no'} | {needs} | {link} |")
    out += ["### `reward`: the registered rewards (`distill = \"policy_gradient\"`)", "\n".join(rows)]
    for name, e in registered("reward").items():
        if e.metadata.get("args") is not None:
            out += [f"### `reward_args` of `reward = \"{name}\"` {{ #reward-args-{name} }}",
                    model_table(e.metadata["args"], "loop.reward_args", 4)]
    return _join(out)


def suite_reference() -> str:
    """Every section and key of a suite file, from the `Suite` model and the registered extensions."""
    from harness.app.suite import Suite

    out = ["# Suite files", _INTRO]
    for name, field in Suite.model_fields.items():
        many = typing.get_origin(_bare(field.annotation)) is list
        out.append(f"## `{'[[' if many else '['}{name}{']]' if many else ']'}` {{ #{name} }}")
        if many:
            out.append(text(f"An array of tables: {field.description}." if field.description else
                            f"An array of tables ({_bounds(field) or 'any number'})."))
        elif field.description:
            out.append(text(field.description))
        models = _models_in(field.annotation)
        if name in _KINDS:
            out.append(_registered_section(name))
        elif models:
            out += [model_table(m, name, 3) for m in models]
        else:
            out.append(f"Type `{type_name(field.annotation)}`, default `{default_text(field)}`.")
        if name == "loop":
            out.append(_strategies())
        if name == "conditions":
            out.append("`domain`, `base` and `loop` hold keys of those sections (above) that the condition "
                       "overrides; every other setting is the suite's.")
        if name == "probes":
            out.append("The built-in probes, their ids and parameters: [Built-in probes](probes/index.md).")
    return _join(out) + "\n"


# ---------------------------------------------------------------- probes


def builtin_probes() -> dict[str, type[Probe]]:
    """Every registered probe whose class lives in `probes.library`, by id."""
    from probes import registry

    return {pid: cls for pid, cls in registry().items() if cls.__module__.startswith("probes.library.")}


def _probe_page(pid: str, cls: type[Probe]) -> str:
    facts = (f"| | |\n|---|---|\n| family | [`{cls.family}`](index.md#{cls.family}) |\n"
             f"| reads | {', '.join(f'`{r}`' for r in cls.reads)} |\n"
             f"| defined in | `{cls.__module__}.{cls.__qualname__}` |")
    out = [f"# `{pid}`", facts, text(_doc(cls)), "## Parameters",
           "Set per probe in a suite's [`[probes]`](../suite.md#probes) section.", model_table(cls.Params, pid, 3)]
    names = getattr(cls, "measurements", None)
    if names:
        out += ["## Measurements", "\n".join(f"- `{n}`" for n in names)]
    return _join(out) + "\n"


def probe_pages() -> dict[str, str]:
    """`reference/probes/<id>.md` for every built-in probe, and `reference/probes/index.md` by family."""
    probes = builtin_probes()
    pages = {f"reference/probes/{pid}.md": _probe_page(pid, cls) for pid, cls in probes.items()}
    index = ["# Built-in probes",
             ("Every probe of the library, by family. Each page is generated from the probe's class: its "
              "docstring, metadata and `Params`. `loopprobe probes` lists them too; how to write one: "
              "[Writing a probe](../../writing-a-probe.md).")]
    for family in sorted({cls.family for cls in probes.values()}):
        rows = ["| probe | reads | description |", "|---|---|---|"]
        rows += [f"| [`{pid}`]({pid}.md) | {', '.join(cls.reads)} | {text(cls.description())} |"
                 for pid, cls in probes.items() if cls.family == family]
        index += [f"## {family} {{ #{family} }}", "\n".join(rows)]
    pages["reference/probes/index.md"] = _join(index) + "\n"
    return pages


def probe_nav() -> list[Any]:
    """The nav entries of the probe pages: the index, then one section per family."""
    probes = builtin_probes()
    families = sorted({cls.family for cls in probes.values()})
    return ["reference/probes/index.md",
            *({f: [{pid: f"reference/probes/{pid}.md"} for pid, cls in probes.items() if cls.family == f]}
              for f in families)]


# ---------------------------------------------------------------- artifacts


def _layout(rows: list[tuple[str, str]]) -> str:
    width = max(len(path) for path, _ in rows) + 2
    return "```text\n" + "\n".join(f"{path.ljust(width)}{what}" for path, what in rows) + "\n```"


def _pooled_prefix() -> tuple[str, str]:
    """(a run directory's name, the prefix a PooledRunView puts on that run's item ids), from two real runs."""
    from probes import PooledRunView, RunView
    from probes.testing import clean_rounds, write_synthetic_run

    with tempfile.TemporaryDirectory(prefix="loopprobe-docs-") as tmp:
        views = [RunView(write_synthetic_run(Path(tmp) / f"seed-{s}", clean_rounds(1), n_pool=2, k=2, n_test=1,
                                             n_ood=1, eval_k=1, n_ref=1, seed=s)) for s in (0, 1)]
        own, pooled = views[0].samples(0).question_ids[0], PooledRunView(views).samples(0).question_ids[0]
        return views[0].name, pooled[: len(pooled) - len(own)]


def _domain_section(name: str, prefix: str) -> str:
    from harness.domains.base import recorded_domain

    domain = recorded_domain({"domain": {"name": name}}, 0)
    splits, module = domain.splits(), sys.modules[type(domain).__module__]
    q = splits.pool[0]
    rationale = domain.reference_rationale(q)
    firsts = [(s, getattr(splits, s)[0].id) for s in ("pool", "test", "ood", "base_val") if getattr(splits, s)]
    firsts += [("base_train", splits.base_train[0].question.id)] if splits.base_train else []
    firsts += [("reference (text id)", splits.reference[0][0])] if splits.reference else []
    example = {"id": q.id, "skill": q.skill, "prompt": q.prompt, "answer": q.answer,
               "reference_rationale(question)": rationale, "parse(rationale)": domain.parse(rationale)}
    out = [f"### `{name}` {{ #domain-{name} }}", text(_doc(type(domain))),
           f"Ids, the first of each split (a run with seed 0 and the default [`[domain]`](suite.md#domain-{name})):",
           "| split | id |\n|---|---|\n" + "\n".join(f"| {s} | `{i}` |" for s, i in firsts)]
    parse_back = getattr(module, "question_from_id", None)
    if callable(parse_back) and parse_back(q.id) == q:
        out.append(f"`{module.__name__}.question_from_id` parses an id back into its question "
                   f"(`question_from_id({q.id!r})` gives the question below).")
    out += [("The first pool question, its gold rationale (base-train and the reference texts use it) and the "
            "answer the domain's parser reads in it:"),
            "```json\n" + json.dumps(example, indent=2, ensure_ascii=False) + "\n```",
            "The same as the model sees it, the prompt then the completion:", f"```text\n{q.prompt}{rationale}\n```",
            f"Pooled over seeds, this question's id is `{prefix}{q.id}`.",
            "The format, as the domain's module describes it:", f"```text\n{_doc(module)}\n```"]
    return _join(out)


def _files_section() -> str:
    from harness import artifacts
    from probes import ProbeResults
    from probes import _records as records
    from probes.gates import GateSpec, SuiteOutcome

    sections: list[tuple[str, type[BaseModel], str]] = [
        ("manifest.json", artifacts.Manifest, ("Written when the run starts; `config` is the resolved run "
                                              "configuration: the suite's sections for this condition and seed.")),
        (f"round-NNN/{artifacts.ROUND_FILE}", artifacts.RoundRecord, ""),
        ("round-NNN/samples.jsonl, round-NNN/eval.jsonl", artifacts.SampleRow,
         ("One JSON object per line. `samples.jsonl`: split `pool`, k sampled decodings per question; "
          "`eval.jsonl`: splits `test` and `ood`, one greedy and `eval_k` sampled decodings per question.")),
        ("round-NNN/reference.jsonl", artifacts.ReferenceRow, "Text ids are the domain's (below)."),
        ("round-NNN/selected.jsonl", artifacts.SelectedRow, ""),
        ("probes.json", ProbeResults, f"Its per-item sidecar is `{records.ITEMS_FILE}` (below)."),
        ("suite.json", SuiteOutcome, ("`conditions` holds each condition's pooled `probes.json` (above); a gate "
                                      "result holds its gate as the suite wrote it ([`[[gates]]`](suite.md#gates)) "
                                      "and its measurement.")),
    ]
    seen: set = {GateSpec}
    out = ["## Files"]
    for title, model, note in sections:
        out += [f"### {title}", text(note), model_table(model, "", 4, seen, toml=False)]
    members = [p for p in _doc(records).split("\n\n") if p.startswith("Members")]
    out += [f"### {records.ITEMS_FILE}", text(" ".join(members) or _doc(records))]
    return _join(out)


def artifact_formats() -> str:
    """The run and suite output layouts, every file's schema (from the row models) and each domain's items."""
    from harness import artifacts
    from harness.registry import registered
    from probes import ProbeResults
    from probes._records import ITEMS_FILE

    run_name, prefix = _pooled_prefix()
    run = [("RUN/manifest.json", "resolved config, seed, base-model record, package versions, git revision"),
           ("RUN/round-NNN/", "one directory per round (round-000: the base model, evaluated)"),
           ("    model/", "this round's checkpoint (safetensors; under hf with lora: the adapter)"),
           ("    eval.jsonl", "test and ood decodings, greedy and sampled"),
           ("    reference.jsonl", "the NLL of each fixed reference text under this round's model"),
           ("    samples.jsonl", "k samples per pool question"),
           ("    selected.jsonl", "the training set this round built (it trains round N+1)"),
           ("    inspect/<task>.eval", "inspect-ai logs, when the suite has [[inspect]] tasks"),
           (f"    {artifacts.ROUND_FILE}", "written last: status, metrics, counts, timings, sha256 of every file"),
           ("RUN/probes.json", "what loopprobe probes measured, each probe's definition and fingerprints"),
           (f"RUN/{ITEMS_FILE}", "the per-item values behind the measurements (sha256 in probes.json)"),
           ("RUN/report.{json,md,html}", "loopprobe report RUN")]
    suite = [("OUT/suite.json", "the verdict: every gate with its measurement"),
             ("OUT/<condition>/seed-<n>/", "one run directory (above) per condition and seed"),
             ("OUT/<condition>/probes.json", f"the condition's measurements, its seeds pooled (and its {ITEMS_FILE})"),
             ("OUT/report.{json,md,html}", "loopprobe report OUT")]
    out = ["# Artifact formats",
           (f"Generated from the models that write and read each file. Run records are format "
            f"{artifacts.SCHEMA_VERSION} (`schema_version`), `probes.json` format "
            f"{ProbeResults.model_fields['schema_version'].default}. Every file is written atomically; how each "
            "is checked when read: [Reliability](../reliability.md). `report.json`: "
            "[its schema](../report-schema.md)."),
           "## A run directory", _layout(run), "## A suite output",
           ("`loopprobe run SUITE --out OUT` writes one run per condition (`default` when the suite has no "
            "`[[conditions]]`) and seed:"), _layout(suite),
           _files_section(), "## Item ids",
           ("Probes and reports name items by id: a question id (the domain's, below) or a reference text id. "
            "When a condition's seeds are pooled, each id is prefixed with its run's directory name: "
            f"`{prefix}` for the run `{run_name}`."),
           "## Domains", *(_domain_section(name, prefix) for name in registered("domain"))]
    return _join(out) + "\n"


def pages() -> dict[str, str]:
    """Every generated page by its path under the docs folder."""
    return {"reference/suite.md": suite_reference(), "reference/artifacts.md": artifact_formats(), **probe_pages()}
