"""`imdb-rnn tune`: an Optuna study over a variant's levers, on the pipeline's own training code.

``space`` reads and checks tune.yaml and turns a trial's choices into params, ``study`` runs the
trials (pruned on validation accuracy per epoch, tracked in MLflow), ``export`` writes the best
trial into params.yaml as a variant, ``summary`` writes reports/tune.md.
"""
