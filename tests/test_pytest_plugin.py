"""The pytest plugin: each gate of a suite is a test item; fixtures expose the measurements."""

from tests.test_suite import FAILS, HOLDS, tiny_suite

pytest_plugins = ["pytester"]

USER_TEST = """
def test_my_own_assertion(loopprobe_measurements, loopprobe_outcome):
    rate = loopprobe_measurements[("default", "cw.rate", "rate")]
    assert rate.ci_low <= rate.value <= rate.ci_high
    assert loopprobe_outcome.suite == "tiny"
"""


def test_each_gate_is_a_test_and_fixtures_give_the_measurements(pytester, tmp_path):
    suite = tiny_suite(tmp_path, HOLDS + FAILS)
    pytester.makepyfile(test_user=USER_TEST)
    result = pytester.runpytest_inprocess("--loopprobe-suite", str(suite), "--loopprobe-out", str(tmp_path / "out"),
                                          "-p", "no:cacheprovider", "-rA")
    result.assert_outcomes(passed=3, failed=1)  # complete[default], one gate, the user test
    result.stdout.fnmatch_lines(["*gate failed: [[]default] attractor.answer_entropy: entropy <= -1: above max*"])
    result.stdout.fnmatch_lines(["*PASSED*gate[[]default] cw.rate: rate <= 1*"])

    # the recorded runs can be re-checked without running the loop again
    again = pytester.runpytest_inprocess("--loopprobe-suite", str(suite), "--loopprobe-run", str(tmp_path / "out"),
                                         "-p", "no:cacheprovider")
    again.assert_outcomes(passed=3, failed=1)


def test_a_bad_suite_is_a_usage_error(pytester, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[suite]\nname = 'x'\n[loop]\ntau = 3")
    result = pytester.runpytest_inprocess("--loopprobe-suite", str(bad), "-p", "no:cacheprovider")
    assert result.ret == 4  # pytest's usage-error exit code
    result.stderr.fnmatch_lines(["*bad.toml: key loop.tau*"])
