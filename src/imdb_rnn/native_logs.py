"""TensorFlow's native start-up lines nobody can act on, dropped from the process' stderr.

Package-free on purpose: the served raw-text model ships this module (``text_model.SHIPPED``) and
calls it before Keras loads, as the stages do through ``backend.select_backend``.
"""

from __future__ import annotations

import atexit
import os
import re
import sys
import threading

# Native log lines nobody can act on: absl's pre-init banner, oneDNN's "custom operations are
# on" notice (TF_CPP_MIN_LOG_LEVEL cannot silence them: they are printed before it is read),
# oneDNN's fallback notice for boolean masks, and tf.data's "NodeDef mentions attribute
# use_unbounded_threadpool" version-skew error.
NATIVE_NOISE = re.compile(
    rb"^(WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    rb"|[IE]\d{4} [\d:. ]+\d+ (port\.cc:\d+\] oneDNN custom operations are on"
    rb"|util\.cc:\d+\] oneDNN supports DT_BOOL only on platforms with AVX-512"
    rb"|node_def_util\.cc:\d+\] NodeDef mentions attribute use_unbounded_threadpool))"
)


def quiet_tensorflow() -> None:
    """Before the first ``import keras``: TensorFlow's C++ logs at warnings and above, the noise filtered."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    filter_native_stderr()


_filtered = threading.Event()


def filter_native_stderr() -> None:
    """Route the process' native stderr (fd 2) through a thread that drops ``NATIVE_NOISE`` lines.

    Python's own ``sys.stderr`` keeps writing to the real stderr directly, so error lines and
    tracebacks never wait on the filter; native lines other than the noise pass through as written,
    and at exit the filter is drained before the process ends. Once per process.
    """
    if _filtered.is_set():
        return
    _filtered.set()
    try:
        real = os.dup(2)
        read_end, write_end = os.pipe()
    except OSError:
        return
    sys.stderr.flush()
    encoding = sys.stderr.encoding or "utf-8"
    sys.stderr = open(os.dup(real), "w", buffering=1, encoding=encoding, errors="backslashreplace")  # noqa: SIM115
    os.dup2(write_end, 2)
    os.close(write_end)

    def pump() -> None:
        with open(read_end, "rb", buffering=0) as source, open(real, "wb", buffering=0) as sink:
            for line in iter(source.readline, b""):
                if not NATIVE_NOISE.match(line):
                    sink.write(line)

    pumping = threading.Thread(target=pump, name="native-stderr-filter", daemon=True)
    pumping.start()

    def drain() -> None:
        os.dup2(sys.stderr.fileno(), 2)  # closes the pipe's only write end: the pump reads to EOF
        pumping.join(timeout=2)

    atexit.register(drain)
