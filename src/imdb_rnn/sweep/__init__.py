"""`imdb-rnn sweep`: a `-S` grid run as DVC experiments, one Ray task per point, on any node.

`dvc queue` stops at one machine (local broker), and DVC 3 dropped its remote executors, so
the driver hands each grid point to Ray. The task clones the current commit from the git
remote into a node-local folder, runs `dvc exp run --pull` there (data, and every stage
already computed anywhere, come from the DVC remote and its run cache) and pushes the
experiment back (git ref, DVC cache, run cache). MLflow runs go to one tracking server.
The driver shows progress, then pulls every experiment and prints the comparison.

Modules: ``grid`` (the points and their checks), ``git`` (the remotes the nodes use),
``node`` (the Ray task), ``stage_results`` (what the task pushes besides the experiment),
``driver`` (the cluster, progress, the outcome) and ``compare`` (the table and MLflow links).
Ray is imported lazily, so the rest of the CLI works without it.
"""

from __future__ import annotations

from ..errors import ImdbRnnError


class SweepError(ImdbRnnError):
    """A problem the user fixes before the sweep can run (or a failed point): one line, the fix included."""
