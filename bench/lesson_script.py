"""The lesson's IMDB model ("Keras for RNN - IMDB"), written as the lesson writes it: the benchmark's baseline.

Plain Keras, TensorFlow backend, no unroll, ``validation_split=0.2``. Only the data source differs:
the benchmark passes the pipeline's prepared arrays instead of ``imdb.load_data``, so both sides
see the same reviews. Import this module only after the Keras backend is chosen.
"""

import time

import keras

# The lesson imports Embedding from keras.layers.embeddings; Keras 3 removed that module,
# so all three layers come from keras.layers (same classes).
from keras.layers import Dense, Embedding, SimpleRNN
from keras.models import Sequential

max_features = 10000  # Number of words to consider as features
maxlen = 500  # Cuts off texts after this many words (among the max_features most common words)
validation_split = 0.2  # the lesson's fit argument, named so the benchmark can check which rows validate


class EpochTimer(keras.callbacks.Callback):
    """Seconds per epoch, training plus validation (a benchmark addition; the model is untouched)."""

    def on_train_begin(self, logs=None):
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self.started)


def fit_lesson_model(input_train, y_train, layers: int, epochs: int, batch_size=128):
    """Build, compile and fit the lesson's model; ``history.history['epoch_seconds']`` holds the timings.

    ``layers=1`` is the lesson's IMDB model; ``layers=4`` its stack (three SimpleRNN returning
    sequences, then one returning the last output).
    """
    timer = EpochTimer()
    model = Sequential()
    model.add(Embedding(max_features, 32))
    for _ in range(layers - 1):
        model.add(SimpleRNN(32, return_sequences=True))
    model.add(SimpleRNN(32))  # Last layer only returns the last output
    model.add(Dense(1, activation="sigmoid"))
    model.compile(optimizer="rmsprop", loss="binary_crossentropy", metrics=["acc"])
    history = model.fit(
        input_train, y_train, epochs=epochs, batch_size=batch_size, validation_split=validation_split, callbacks=[timer]
    )
    history.history["epoch_seconds"] = timer.seconds
    return history
