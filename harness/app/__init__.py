"""The application layer, on top of everything: the `loopprobe` CLI, suite files and their runner, gates and
verdicts over suite outputs, the pytest plugin, cost estimates, and the shipped suites' names.

Layers import downward only (checked by import-linter, `.importlinter`): `harness.app` → `reports` →
`probes` → the loop (`harness.loop`, strategies, models, domains, config) → artifacts (`harness.artifacts`).
"""
