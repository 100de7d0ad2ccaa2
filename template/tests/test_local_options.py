"""Local mode's switches: `--concurrency N` and `--bandwidth-shape`, or their variables."""

import pytest

from lambda_streaming.main import LocalOptions, local_options


def test_defaults_are_one_environment_and_full_speed():
    assert local_options([], {}) == LocalOptions(concurrency=1, bandwidth_shape=False)


def test_flags_set_concurrency_and_the_bandwidth_shape():
    options = local_options(["--concurrency", "4", "--bandwidth-shape"], {})
    assert options == LocalOptions(concurrency=4, bandwidth_shape=True)


def test_environment_variables_apply_when_no_flag_is_given():
    environ = {"LOCAL_LAMBDA_CONCURRENCY": "3", "LOCAL_LAMBDA_BANDWIDTH_SHAPE": "1"}
    assert local_options([], environ) == LocalOptions(concurrency=3, bandwidth_shape=True)
    assert local_options(["--concurrency", "2"], environ).concurrency == 2


@pytest.mark.parametrize("argv", [["--concurrency", "0"], ["--concurrency", "x"], ["--nope"]])
def test_bad_switches_exit_with_a_message(argv, capsys):
    with pytest.raises(SystemExit):
        local_options(argv, {})
    assert "usage:" in capsys.readouterr().err


def test_bad_concurrency_variable_exits_with_a_message(capsys):
    with pytest.raises(SystemExit):
        local_options([], {"LOCAL_LAMBDA_CONCURRENCY": "many"})
    assert "LOCAL_LAMBDA_CONCURRENCY" in capsys.readouterr().err
