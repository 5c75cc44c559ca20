"""Greedy accuracy on a run's own items, as an inspect task: the same prompts the harness decodes, parsed
and checked by the run's domain, so a round's score equals its greedy accuracy in eval.jsonl."""

from __future__ import annotations

from inspect_ai import Task, task
from inspect_ai.dataset import MemoryDataset, Sample
from inspect_ai.model import GenerateConfig
from inspect_ai.scorer import Score, Target, accuracy, scorer, stderr
from inspect_ai.solver import TaskState, generate

from harness.domains.base import Question
from harness.inspect_bridge.tasks._items import run_items


@scorer(metrics=[accuracy(), stderr()])
def domain_answer(domain):
    """1 when the domain's checker accepts the answer its parser reads from the completion, else 0."""

    async def score(state: TaskState, target: Target) -> Score:
        answer = domain.parse(state.output.completion)
        question = Question(str(state.sample_id), state.metadata.get("skill", ""), "", target.text)
        return Score(value=float(domain.check(question, answer)), answer=answer,
                     explanation=state.output.completion)

    return score


@task
def split_accuracy(run_dir: str, split: str = "test", max_tokens: int = 40) -> Task:
    """Greedy accuracy on the `split` items of the run recorded in `run_dir`."""
    domain, questions = run_items(run_dir, split)
    dataset = MemoryDataset([Sample(input=q.prompt, target=q.answer, id=q.id, metadata={"skill": q.skill})
                             for q in questions], name=f"{domain.name}-{split}")
    return Task(dataset=dataset, solver=generate(), scorer=domain_answer(domain),
                config=GenerateConfig(temperature=0.0, max_tokens=max_tokens))
