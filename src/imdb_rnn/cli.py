"""`imdb-rnn` command line: `imdb-rnn predict --model simple_rnn "A moving film."`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .errors import run_cli
from .wording import int_arg

# Each command's module is imported when the command runs: `imdb-rnn --help` starts in about 0.2 s, with them
# at the top in over 1 s (numpy, pandas and pyarrow for predict, dvc and hydra for sweep).


def _predict(args: argparse.Namespace) -> int:
    from .predict import predict_with_uri, predict_with_variant, read_texts

    root = Path(args.project).resolve()
    texts = read_texts(args.text, args.file, sys.stdin)
    if ":" in args.model:  # a model URI: variant names have no colon
        predictions = predict_with_uri(texts, args.model, root)
    else:
        predictions = predict_with_variant(texts, args.model, root)
    for p in predictions:
        snippet = p.text if len(p.text) <= 60 else p.text[:57] + "..."
        print(f"{p.label}\t{p.probability:.4f}\t{snippet}")
    return 0


def _sweep(args: argparse.Namespace) -> int:
    from .sweep.driver import main  # Ray itself is imported only when a sweep runs

    return main(args)


def _push_stage_results(args: argparse.Namespace) -> int:
    from .sweep.stage_results import push_stage_results

    push_stage_results(Path.cwd())
    return 0


def _tune(args: argparse.Namespace) -> int:
    from .backend import select_backend
    from .tuning.confirm import seeds_mean
    from .tuning.export import export_variant
    from .tuning.space import TRIAL, load_space
    from .tuning.study import open_storage, open_study, run_study, storage_url

    root = Path(args.project).resolve()
    space = load_space(root / args.space, root / "params.yaml")
    storage = open_storage(storage_url(root, args.storage))
    if args.export:
        study = open_study(space, storage)
        number, values = export_variant(space, study, args.export, root / "params.yaml")
        shown = ", ".join(f"{seed}: {value:.4f}" for seed, value in values.items())
        print(
            f"params.yaml: models.{args.export} is trial {number} of study {study.study_name} (validation accuracy "
            f"{seeds_mean(values):.4f}, seeds {shown}); `dvc repro` trains it over the usual seeds"
        )
        return 0
    select_backend(space.params({}).train_for(TRIAL).backend)
    report = root / "reports" / f"{Path(args.space).stem}.md"  # tune.yaml's study: reports/tune.md
    study = run_study(space, storage, root, root / "data" / "prepared", args.trials, args.minutes, report)
    print(f"study {study.study_name}: {len(study.trials)} trials; report: {report}")
    return 0


def _grant(args: argparse.Namespace) -> int:
    from .access import grant, read_password
    from .config import load_params

    settings = load_params(Path(args.project) / "params.yaml").mlflow
    print(grant(args.user, read_password(args.user), args.role, settings))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="imdb-rnn", description="SimpleRNN sentiment models on IMDB")
    # push-stage-results, which only a sweep task runs, is hidden: left out of this metavar, and given no help=
    commands = parser.add_subparsers(dest="command", required=True, metavar="{predict,sweep,tune,grant}")
    p = commands.add_parser("predict", help="score review text with a trained variant")
    p.add_argument("text", nargs="*", help="review text(s); none: read --file or stdin")
    p.add_argument(
        "--model",
        default="simple_rnn",
        help="a variant name from params.yaml (default simple_rnn), or an MLflow model URI: "
        "models:/imdb-rnn-sentiment@champion, runs:/<run id>/<variant>",
    )
    p.add_argument("--file", help="a file with one review per line ('-' for stdin)")
    p.add_argument("--project", default=".", help="project root holding params.yaml (default: .)")
    p.set_defaults(func=_predict)

    s = commands.add_parser("sweep", help="run a -S grid as DVC experiments, one Ray task per point, on a Ray cluster")
    s.add_argument(
        "-S",
        "--set-param",
        dest="set_params",
        action="append",
        required=True,
        metavar="[FILE:]KEY=V1,V2",
        help="as for `dvc exp run`: comma lists make a grid, the cartesian product of every -S",
    )
    s.add_argument(
        "--ray",
        default="auto",
        metavar="ADDRESS",
        help="the Ray cluster's head, HOST:PORT (default: auto, the cluster `ray start` started "
        "on this machine, or RAY_ADDRESS)",
    )
    s.add_argument(
        "--cpus-per-point",
        type=int_arg(1),
        default=1,
        help="CPUs each point gets from Ray; its TensorFlow threads are limited to them (default 1)",
    )
    s.add_argument("--git-remote", default="origin", help="git remote the nodes clone from and push to")
    s.add_argument("--scratch", help="absolute node-local folder for the clones (default: each node's temp folder)")
    s.add_argument("--project", default=".", help="project root holding dvc.yaml (default: .)")
    s.set_defaults(func=_sweep)

    t = commands.add_parser(
        "tune", help="an Optuna study over tune.yaml's levers; --export NAME adds its best to params.yaml"
    )
    t.add_argument(
        "--space", default="tune.yaml", help="the search space (default: tune.yaml); its report: reports/<its stem>.md"
    )
    t.add_argument("--trials", type=int_arg(1), help="complete + pruned trials of the study (default: tune.yaml's)")
    t.add_argument("--minutes", type=float, help="this worker's time budget (default: tune.yaml's)")
    t.add_argument(
        "--storage",
        help="Optuna storage URL shared by the workers (default: sqlite:///optuna.db at the project root; "
        "a team: postgresql+psycopg://user@host/db, the password in PGPASSWORD or ~/.pgpass)",
    )
    t.add_argument("--export", metavar="NAME", help="write the best trial into params.yaml as variant NAME, then stop")
    t.add_argument("--project", default=".", help="project root holding params.yaml (default: .)")
    t.set_defaults(func=_tune)

    g = commands.add_parser(
        "grant",
        help="on a team's MLflow server with basic-auth: create a user (or reset its password) as trainer or reader",
        description="Run as the server's admin (MLFLOW_TRACKING_URI, MLFLOW_TRACKING_USERNAME, "
        "MLFLOW_TRACKING_PASSWORD). The new password is read from stdin's first line, or asked for on a terminal.",
    )
    g.add_argument("user", help="the account to create or update")
    g.add_argument(
        "--role",
        choices=("trainer", "reader"),
        required=True,
        help="trainer: EDIT on the project's experiments and registered model; reader: READ on them",
    )
    g.add_argument("--project", default=".", help="project root holding params.yaml (default: .)")
    g.set_defaults(func=_grant)

    h = commands.add_parser(
        "push-stage-results",
        description="push the files of the workspace's stage results in the run cache (a sweep task runs it)",
    )
    h.set_defaults(func=_push_stage_results)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_cli(lambda: args.func(args), interrupted=f"{args.command} stopped")


if __name__ == "__main__":
    sys.exit(main())
