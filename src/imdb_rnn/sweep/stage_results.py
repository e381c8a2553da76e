"""What a sweep task pushes besides its experiment: the files of the stage results in the run cache."""

from __future__ import annotations


def push_stage_results() -> None:
    """Push the files of every stage result in the run cache, ``cache: false`` outputs included.

    `dvc exp push --run-cache` (DVC 3.x) sends the run-cache entries but not the files of
    outputs kept in git (metrics, plots, history.csv); another node then cannot restore the
    stage from the entry and trains again. These are exactly the entries of the workspace's
    stages (ran or restored here). Runs in the clone (DVC resolves run-cache paths from the
    working directory): `imdb-rnn push-stage-results`.
    """
    from dvc.repo import Repo
    from dvc.stage.cache import _can_hash, _get_cache_hash, _get_stage_hash
    from dvc.stage.serialize import to_single_stage_lockfile

    with Repo(".") as dvc_repo:
        stages = [s for s in dvc_repo.index.stages if all(dep.exists for dep in s.deps) and _can_hash(s)]
        entries = [(_get_stage_hash(s), _get_cache_hash(to_single_stage_lockfile(s))) for s in stages]
        for objs in dvc_repo.stage_cache.get_used_objs(entries).values():
            dvc_repo.cloud.push(objs)
