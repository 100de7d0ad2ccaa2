"""Local mode's switches: `--concurrency N` and `--bandwidth-shape`, or their variables."""

import os

import pytest

from lambda_streaming.main import FunctionSettings, LocalOptions, local_options, run_local


def test_defaults_are_one_environment_and_full_speed():
    assert local_options([], {}) == LocalOptions(concurrency=1, bandwidth_shape=False)


def test_flags_set_concurrency_and_the_bandwidth_shape():
    options = local_options(["--concurrency", "4", "--bandwidth-shape"], {})
    assert options == LocalOptions(concurrency=4, bandwidth_shape=True)


def test_environment_variables_apply_when_no_flag_is_given():
    environ = {"LOCAL_LAMBDA_CONCURRENCY": "3", "LOCAL_LAMBDA_BANDWIDTH_SHAPE": "1"}
    assert local_options([], environ) == LocalOptions(concurrency=3, bandwidth_shape=True)
    assert local_options(["--concurrency", "2"], environ).concurrency == 2


@pytest.mark.parametrize(
    "argv", [["--concurrency", "0"], ["--concurrency", "x"], ["--concurrency", "1001"], ["--nope"]]
)
def test_bad_switches_exit_with_a_message(argv, capsys):
    with pytest.raises(SystemExit):
        local_options(argv, {})
    assert "usage:" in capsys.readouterr().err


def test_bad_concurrency_variable_exits_with_a_message(capsys):
    with pytest.raises(SystemExit):
        local_options([], {"LOCAL_LAMBDA_CONCURRENCY": "many"})
    assert "LOCAL_LAMBDA_CONCURRENCY" in capsys.readouterr().err


def test_concurrency_past_1000_is_refused_with_a_message(capsys):
    with pytest.raises(SystemExit):
        local_options([], {"LOCAL_LAMBDA_CONCURRENCY": "100000"})
    error = capsys.readouterr().err
    assert "LOCAL_LAMBDA_CONCURRENCY: must be a whole number from 1 to 1000, not '100000'" in error
    assert local_options([], {"LOCAL_LAMBDA_CONCURRENCY": "1000"}).concurrency == 1000


@pytest.mark.parametrize(
    ("text", "on"),
    [
        *[("1", True), ("TRUE", True), ("yes", True), ("On", True)],
        *[("0", False), ("false", False), ("No", False), ("OFF", False), ("", False)],
    ],
)
def test_bandwidth_shape_variable_takes_the_usual_on_and_off_words(text, on):
    assert local_options([], {"LOCAL_LAMBDA_BANDWIDTH_SHAPE": text}).bandwidth_shape is on


@pytest.mark.parametrize("text", ["2", "banana", "enabled"])
def test_any_other_bandwidth_shape_value_is_refused_with_a_message(text, capsys):
    with pytest.raises(SystemExit):
        local_options([], {"LOCAL_LAMBDA_BANDWIDTH_SHAPE": text})
    assert "LOCAL_LAMBDA_BANDWIDTH_SHAPE must be 1, true, yes or on" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("endpoint", "reason"),
    [
        ("invoke", "must be a path that starts with /"),
        ("/my invoke", "must be a path that starts with /"),
        ("/invoke?x=1", "must be a path that starts with /"),
        ("/prod/stream", "must not be the API Gateway view's path /prod/stream"),
        ("/2018-06-01/runtime", "must not be under the Runtime API's /2018-06-01"),
        ("/2018-06-01", "must not be under the Runtime API's /2018-06-01"),
    ],
)
def test_bad_invocation_endpoint_is_refused_before_listening(endpoint, reason, monkeypatch, capsys):
    monkeypatch.setattr(os, "environ", {**os.environ})  # run_local sets AWS_* defaults
    monkeypatch.setenv("LOCAL_LAMBDA_INVOCATION_ENDPOINT", endpoint)
    assert run_local("no_such.handler", FunctionSettings()) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: LOCAL_LAMBDA_INVOCATION_ENDPOINT ")
    assert reason in error
    assert repr(endpoint) in error
