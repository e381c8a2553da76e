"""SimpleRNN sentiment experiments on IMDB as a DVC + MLflow workflow."""

import os

# MLflow's usage telemetry off in every entry point that imports the package (the stages, `imdb-rnn`,
# the served model), not only under `make`; a user's own setting wins. DVC's is off in .dvc/config.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
