"""A stop stays a stop when a C extension's initialisation turns it into its own ImportError (``shared.util.signals``).
The extension is imitated: the signal arrives inside a block that catches it and raises ImportError without the
stop in its chain, as onnxruntime's initialisation does ("import numpy failed")."""

import os
import signal
import threading

import pytest

from shared.formats.runtimes import FORMATS, missing_runtime
from shared.util import signals
from shared.util.errors import EXIT_TERMINATED, UsageError


def initialise_extension_and_get_signal() -> None:
    # elsewhere stop_requests installs no handler, and the SIGTERM would end the test process
    assert threading.current_thread() is threading.main_thread()
    try:
        os.kill(os.getpid(), signal.SIGTERM)  # delivered before kill returns: the handler raises here
        signal.pause()  # not reached while the handler raises
    except KeyboardInterrupt:
        pass
    raise ImportError("import numpy failed")  # the extension's own error, the stop gone from its chain


def test_an_extension_error_after_a_stop_leaves_the_block_as_that_stop():
    with pytest.raises(signals.StopRequested) as stop:
        with signals.stop_requests():
            initialise_extension_and_get_signal()
    assert stop.value.exit_status == EXIT_TERMINATED
    assert isinstance(stop.value.__cause__, ImportError)


def test_an_inner_block_turns_it_into_the_stop_before_the_caller_sees_it():
    with signals.stop_requests():
        with pytest.raises(signals.StopRequested):
            with signals.stops_kept():
                initialise_extension_and_get_signal()


def test_a_missing_runtime_after_a_stop_is_the_stop_not_advice_to_install():
    with signals.stop_requests():
        with pytest.raises(signals.StopRequested):
            try:
                initialise_extension_and_get_signal()
            except ImportError as error:
                raise missing_runtime(FORMATS["onnx"], error) from None


def test_without_a_stop_errors_pass_unchanged():
    with signals.stop_requests():
        with pytest.raises(ImportError, match="no module"):
            with signals.stops_kept():
                raise ImportError("no module named onnxruntime")
        assert isinstance(missing_runtime(FORMATS["onnx"], ImportError("no module")), UsageError)


def test_a_stop_in_an_earlier_block_is_forgotten():
    with pytest.raises(signals.StopRequested):
        with signals.stop_requests():
            initialise_extension_and_get_signal()
    with signals.stop_requests():
        with pytest.raises(ImportError):
            with signals.stops_kept():
                raise ImportError("a real missing package")


def test_an_error_after_a_handled_stop_stays_that_error():
    """A stopped run whose status cannot be written reports the disk, not a second stop."""
    with pytest.raises(OSError, match="No space left"):
        with signals.stop_requests():
            try:
                initialise_extension_and_get_signal()
            except ImportError:
                pass  # handled: the run is ending as stopped
            raise OSError(28, "No space left on device")
