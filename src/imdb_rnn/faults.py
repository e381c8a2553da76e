"""Real faults at an exact point of training, on any machine, for the tests of divergence and resume.

Set only by tests: nothing happens unless one of these variables is set in the stage's environment.
"""

from __future__ import annotations

import os
import signal

import numpy as np

FAULT_ENV = "IMDB_RNN_FAULT_NAN"  # tests only: "SEED:EPOCH:BATCH" sets the weights to NaN after that batch
KILL_ENV = "IMDB_RNN_FAULT_KILL"  # tests only: "SEED:EPOCH:BATCH" is a kill -9 after that batch (0: at its start)


def injected_faults(seed: int) -> list:
    """Real faults at an exact point on any machine, for tests (``FAULT_ENV``, ``KILL_ENV``): after
    batch BATCH of epoch EPOCH of seed SEED every weight becomes NaN, so the next loss is NaN as in a
    real blow-up; or the process gets SIGKILL, as from the OOM killer."""
    import keras

    def point(name: str) -> tuple[int, int] | None:
        spec = os.environ.get(name, "")
        if not spec:
            return None
        at_seed, at_epoch, at_batch = (int(part) for part in spec.split(":"))
        return (at_epoch, at_batch) if at_seed == seed else None

    nan_at, kill_at = point(FAULT_ENV), point(KILL_ENV)
    if nan_at is None and kill_at is None:
        return []

    class Faults(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch + 1
            if kill_at == (self.epoch, 0):
                os.kill(os.getpid(), signal.SIGKILL)

        def on_train_batch_end(self, batch, logs=None):
            if nan_at == (self.epoch, batch + 1):
                for variable in self.model.trainable_variables:
                    variable.assign(np.full(variable.shape, np.nan, dtype=variable.dtype))
            if kill_at == (self.epoch, batch + 1):
                os.kill(os.getpid(), signal.SIGKILL)

    return [Faults()]
