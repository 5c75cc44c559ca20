"""An example probe in one short file, written against loopprobe's public API only."""

from probes import Probe, RunView, probe, stats, tracked_names


@probe
class MajorityAccuracy(Probe):
    """Accuracy of the pool majority vote: the answer the loop will train on, right or wrong.

    A fall while the loop trains on its own majority means it is distilling its errors.
    """

    id = "example.majority_accuracy"
    family = "confident_wrong"
    reads = ("samples",)
    measurements = tracked_names("majority_accuracy")

    def measure(self, run: RunView):
        def per_question(r: int):
            table = run.samples(r)  # pool samples: [questions x k] arrays, same order every round
            majority, _ = stats.row_mode(table.answers, table.parsed)
            return majority == table.truth

        ids = run.samples(run.rounds[0]).question_ids
        return self.tracked("majority_accuracy", run, per_question, ids, concern="decrease")
