"""The inspect-ai bridge: each round's in-memory model as an inspect model (`provider`), any inspect Task run
against a round with its `.eval` log kept in the run directory (`run`), and example tasks (`tasks`).

inspect-ai is an optional dependency (`pip install 'loopprobe[inspect]'`); nothing here imports it at package
import time."""

# The Task metadata key under which a task declares floors below which its scores have nothing to detect
# (read by the probe inspect.task_drift; the deference task declares one).
FLOOR_KEY = "loopprobe_floor"
