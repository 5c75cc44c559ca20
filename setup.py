"""Package layout (the metadata is in pyproject.toml): the packages under harness/, probes/ and reports/, plus
the top-level suites/ folder installed as `harness.suites`, so the shipped suite files are package data in a
wheel and in an editable install alike, without a generic top-level `suites` package in site-packages; and
the shipped base model (harness/models/tiny/shipped/KEY/*).
pyproject.toml cannot list found packages plus one mapped folder, hence this file."""

from setuptools import find_packages, setup

setup(
    packages=find_packages(include=["harness*", "probes*", "reports*"]) + ["harness.suites"],
    package_dir={"harness.suites": "suites"},
    package_data={"harness.suites": ["*.toml"], "harness.models.tiny": ["shipped/*/*"]},
)
