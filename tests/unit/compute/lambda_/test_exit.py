"""How a runtime's exit is worded in Runtime.ExitError: as Lambda (Go's ProcessState) says it."""

import signal

import pytest

from devenv.compute.lambda_.pool import exit_error


@pytest.mark.parametrize("returncode, words", [
    (3, "exit status 3"),
    (0, "exit status 0"),
    (-signal.SIGKILL, "signal: killed"),
    (-signal.SIGSEGV, "signal: segmentation fault"),
    (-signal.SIGABRT, "signal: aborted"),
    (-signal.SIGTERM, "signal: terminated"),
    (-40, "signal: signal 40"),
])
def test_exit_is_worded_as_lambda_words_it(returncode, words):
    assert exit_error(returncode) == words
