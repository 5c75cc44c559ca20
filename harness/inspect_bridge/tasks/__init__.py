"""Example inspect tasks over loopprobe domains: `accuracy:split_accuracy` (a run's own held-out items, greedy,
scored as the harness scores them) and `deference:deference` (does the model adopt a user's
confidently stated wrong answer?)."""
