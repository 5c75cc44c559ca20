"""The pytest plugin: each gate of a suite is a test item; fixtures expose the measurements."""

from tests.test_suite import FAILS, HOLDS, TAU_ARMS, tiny_suite

pytest_plugins = ["pytester"]

USER_TEST = """
def test_my_own_assertion(loopprobe_measurements, loopprobe_outcome):
    rate = loopprobe_measurements["default"]["cw.rate"]["rate"]  # as documented: condition, probe, name
    assert rate.ci_low <= rate.value <= rate.ci_high
    assert loopprobe_measurements[("default", "cw.rate", "rate")] is rate and ("default", "cw.rate", "rate") in \
        loopprobe_measurements
    assert loopprobe_outcome.suite == "tiny"
"""


def test_each_gate_is_a_test_and_fixtures_give_the_measurements(pytester, tmp_path):
    suite = tiny_suite(tmp_path, HOLDS + FAILS)
    pytester.makepyfile(test_user=USER_TEST)
    result = pytester.runpytest_inprocess("--loopprobe-suite", str(suite), "--loopprobe-out", str(tmp_path / "out"),
                                          "-p", "no:cacheprovider", "-rA")
    result.assert_outcomes(passed=3, failed=1)  # complete[default], one gate, the user test
    result.stdout.fnmatch_lines(["*gate failed: [[]default] drift.length: length <= 0: above max*"])
    result.stdout.fnmatch_lines(["*PASSED*gate[[]default: drift.length length <= 1000[]]*"])  # a readable id

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


def test_a_typo_in_one_gate_fails_only_that_item_with_its_reason(pytester, tmp_path):
    typo = '[[gates]]\nprobe = "drift.length"\nstat = "lenght"\nmax = 1.0\n'
    suite = tiny_suite(tmp_path, HOLDS + typo)
    pytester.makepyfile(test_user=USER_TEST)
    result = pytester.runpytest_inprocess("--loopprobe-suite", str(suite), "--loopprobe-out", str(tmp_path / "out"),
                                          "-p", "no:cacheprovider", "-rA")
    result.assert_outcomes(passed=3, failed=1)  # complete[default], the good gate and the user test pass
    reason = "key gates.1.stat: probe drift.length has no measurement 'lenght'; did you mean 'length'?"
    result.stdout.fnmatch_lines([f"*gate failed: cannot be evaluated: {reason}"])
    assert "Traceback" not in result.stdout.str()


def test_a_recorded_run_without_a_suite_is_a_usage_error(pytester, tmp_path):
    result = pytester.runpytest_inprocess("--loopprobe-run", str(tmp_path), "-p", "no:cacheprovider")
    assert result.ret == 4  # a usage error, not "collected 0 items" (exit 5)
    result.stderr.fnmatch_lines(["*--loopprobe-run DIR needs --loopprobe-suite SUITE*"])


def test_a_gate_across_conditions_is_one_test_item(pytester, tmp_path):
    across = ('[[gates]]\nprobe = "drift.length"\nstat = "length"\nacross = "mean"\nmax = 1000.0\n'
              '[[gates]]\nprobe = "drift.length"\nstat = "length"\ncondition = "tau*"\nacross = "mean"\nmax = 0.0\n')
    suite = tiny_suite(tmp_path, TAU_ARMS + across)
    result = pytester.runpytest_inprocess("--loopprobe-suite", str(suite), "--loopprobe-out", str(tmp_path / "out"),
                                          "-p", "no:cacheprovider", "-rA")
    result.assert_outcomes(passed=3, failed=1)  # complete[tau05], complete[tau09], the first gate
    result.stdout.fnmatch_lines(["*PASSED*gate[[]every condition: mean of drift.length length <= 1000[]]*"])
    result.stdout.fnmatch_lines(["*gate failed: drift.length: length [[]mean over tau[*][]] <= 0: above max*"])
