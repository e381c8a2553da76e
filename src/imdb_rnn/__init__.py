"""SimpleRNN sentiment experiments on IMDB as a DVC + MLflow workflow."""
