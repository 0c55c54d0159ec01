"""Hyperparameter search with Optuna, through the project's own trainer.

    python -m fmnist.training.search basic_cnn --trials 20 --limit 10000 --epochs 3

Each trial is a short run of `training.fit` without a report: the objective is the best validation loss,
the test set is never touched. Every epoch's validation loss is reported to Optuna, whose median pruner
stops trials that fall behind. The study lives in a database: by default SQLite in search/MODEL/study.db,
so an interrupted search resumes where it stopped; with `--storage postgresql://...` (or mysql://...) the
same command on several machines searches one study together, and `--trials N` counts the finished
trials of all of them. optuna-dashboard reads the same storage.

At the end: the best trial is written to search/MODEL/best.json (`python train.py --params` reads it), with the
optimisation-history and parameter-importance plots beside it.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import socket
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from fmnist.checkpoints.store import atomic_write_json
from fmnist.models.registry import REGISTRY, common_search_space
from fmnist.training.config import TrainConfig

log = logging.getLogger(__name__)
MAX_FAILURES_IN_A_ROW = 3  # then something is broken for every trial, and the search stops with the error
# A worker records its host and pid a moment after asking for a trial; a trial left without them for this long
# belongs to a worker that died in between (killed right after asking), and is marked failed like any orphan.
UNCLAIMED_S = 60


def _require_optuna():
    try:
        import optuna
    except ImportError as e:  # pragma: no cover - it is in requirements.txt
        raise ImportError("the search needs Optuna: pip install optuna") from e
    return optuna


@dataclass
class SearchConfig:
    model: str
    trials: int = 20  # finished (complete or pruned) trials the study should hold, over every worker
    timeout_s: float | None = None  # this worker starts no new trial after this many seconds
    storage: str | None = None  # an Optuna RDB URL; None: sqlite:///<folder>/study.db
    folder: Path = Path("search")

    @property
    def storage_url(self) -> str:
        return self.storage or f"sqlite:///{(self.folder / 'study.db').resolve()}"

    @property
    def study_name(self) -> str:
        return f"fmnist-{self.model}"


@dataclass
class SearchResult:
    best: dict
    finished: int
    pruned: int
    folder: Path

    def summary(self) -> str:
        b = self.best
        lines = [
            f"study: {self.finished} finished trials ({self.pruned} pruned)",
            f"best trial #{b['trial']}: validation loss {b['val_loss']:.4f}, validation accuracy {b['val_acc']:.4f}",
            f"  training settings: {json.dumps(b['train_config'])}",
            f"  model arguments:   {json.dumps(b['model_args'])}",
        ]
        if b.get("defaults_val_loss") is not None:
            better = b["val_loss"] < b["defaults_val_loss"]
            lines.append(
                f"the defaults (trial #0) reached validation loss {b['defaults_val_loss']:.4f}, accuracy "
                f"{b['defaults_val_acc']:.4f}: the best trial is {'better' if better else 'no better'}"
            )
        lines.append(
            f"written: {self.folder / 'best.json'}; train with: python train.py --models {b['model']} "
            f"--params {self.folder / 'best.json'}"
        )
        return "\n".join(lines)


def suggest(trial, model: str) -> tuple[dict, dict]:
    """(training settings, model arguments) for one trial, from the model's own search space."""
    return common_search_space(trial), REGISTRY[model][2](trial)


def _defaults(cfg: TrainConfig, model: str) -> dict:
    """The trial that reproduces the defaults, to be enqueued first: the search then says whether it beat them."""
    d = TrainConfig()
    aug = cfg.augment(model)
    params = {
        "lr": REGISTRY[model][1]["lr"],
        "weight_decay": d.weight_decay,
        "label_smoothing": d.label_smoothing,
        "batch_size": d.batch_size,
        "shift_px": aug.shift_px,
        "hflip": aug.hflip,
        "rotate_deg": aug.rotate_deg,
        "zoom": aug.zoom,
        "erase_p": aug.erase_p,
    }
    own = {
        "mlp": {"hidden_1": 128, "hidden_2": 64, "dropout": 0.0},
        "basic_cnn": {"channels": 32, "hidden": 32, "dropout": 0.25},
        "deep_cnn": {"base_width": 32, "hidden": 128, "dropout": 0.35},
        "resnet": {"base_width": 32, "dropout": 0.0},
        "mobilenet": {"img_size": 64},
    }[model]
    return params | own


def _fail_orphans(study, optuna) -> None:
    """Mark as failed the running trials of this host whose process is gone (a search killed mid-trial), and
    those no worker claimed for UNCLAIMED_S (one killed between asking for a trial and recording itself), so that a
    resumed search does not wait for them. Trials of other hosts are left to their own workers."""
    host = socket.gethostname()
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        owner = t.user_attrs.get("host")
        if owner is None or "pid" not in t.user_attrs:
            # just asked by a worker that has not yet recorded itself, unless that was long ago (and not on
            # another host, whose worker may still write its pid)
            started = t.datetime_start
            old = started is not None and (datetime.now() - started).total_seconds() > UNCLAIMED_S
            if old and owner in (None, host):
                study.tell(t.number, state=optuna.trial.TrialState.FAIL)
                log.info("trial #%d was never claimed by a worker: marked failed", t.number)
            continue
        if owner != host or t.user_attrs.get("pid") == os.getpid():
            continue
        try:
            os.kill(int(t.user_attrs["pid"]), 0)
        except (ProcessLookupError, ValueError):
            study.tell(t.number, state=optuna.trial.TrialState.FAIL)
            log.info("trial #%d's process is gone: marked failed", t.number)
        except PermissionError:
            pass  # alive, another user's


def _counts(study, optuna) -> tuple[int, int, int]:
    S = optuna.trial.TrialState
    trials = study.get_trials(deepcopy=False, states=(S.COMPLETE, S.PRUNED, S.RUNNING))
    done = sum(t.state in (S.COMPLETE, S.PRUNED) for t in trials)
    pruned = sum(t.state == S.PRUNED for t in trials)
    return done, pruned, sum(t.state == S.RUNNING for t in trials)


def _surplus(study, trial, wanted: int, optuna) -> bool:
    """Whether a trial just asked goes past the agreed number: two workers can both see one trial missing and
    both ask. Trial numbers are handed out in order by the storage, so the trials numbered before this one
    that are finished or running decide it, the same way for every worker."""
    S = optuna.trial.TrialState
    before = study.get_trials(deepcopy=False, states=(S.COMPLETE, S.PRUNED, S.RUNNING))
    return sum(t.number < trial.number for t in before) >= wanted


def open_storage(optuna, url: str):
    """The study's storage. On SQLite every transaction takes the write lock when it begins: pysqlite otherwise
    begins one only at the first write, so two workers could both read the queued trial as waiting and both
    run it."""
    if not url.startswith("sqlite"):
        return url
    from sqlalchemy import event

    storage = optuna.storages.RDBStorage(url, engine_kwargs={"connect_args": {"isolation_level": None, "timeout": 60}})
    event.listen(storage.engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN IMMEDIATE"))
    return storage


def _open_study(optuna, search: SearchConfig, cfg: TrainConfig, attempts: int = 5):
    """Create or load the study. Workers that start together on a fresh database race to create its tables
    (sqlalchemy IntegrityError / OperationalError); the loser waits a moment and loads what the winner made."""
    from sqlalchemy.exc import IntegrityError, OperationalError

    for attempt in range(attempts):
        try:
            return optuna.create_study(
                study_name=search.study_name,
                storage=open_storage(optuna, search.storage_url),
                load_if_exists=True,
                direction="minimize",
                sampler=optuna.samplers.TPESampler(seed=cfg.seed + os.getpid(), constant_liar=True),
                pruner=optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1),
            )
        except (IntegrityError, OperationalError):
            if attempt == attempts - 1:
                raise
            time.sleep(0.5 * (attempt + 1))


def run_search(cfg: TrainConfig, search: SearchConfig) -> SearchResult:
    """Run (or resume, or join) the study until it holds search.trials finished trials or the timeout."""
    optuna = _require_optuna()
    from fmnist.data import load_splits
    from fmnist.training import tracking
    from fmnist.training.environment import preflight, resolve_device
    from fmnist.training.loop import fit

    if search.model not in REGISTRY:
        raise ValueError(f"unknown model {search.model!r}")
    search.folder.mkdir(parents=True, exist_ok=True)
    cfg = dataclasses.replace(cfg, models=[search.model], out=str(search.folder / "runs"), resume=False)
    resolved = preflight(cfg)
    dev = resolve_device(cfg.device)
    splits = load_splits(cfg.data_dir, cfg.val_size, cfg.seed, cfg.limit, device=dev, dataset=cfg.dataset)
    study = _open_study(optuna, search, cfg)
    if not study.trials:
        study.enqueue_trial(_defaults(cfg, search.model), user_attrs={"defaults": True}, skip_if_exists=True)
    started = time.monotonic()
    failures = 0
    while True:
        _fail_orphans(study, optuna)
        done, _, running = _counts(study, optuna)
        if done + running >= search.trials:
            break
        if search.timeout_s is not None and time.monotonic() - started > search.timeout_s:
            log.info("timeout: no new trial after %.0f s", search.timeout_s)
            break
        trial = study.ask()
        if _surplus(study, trial, search.trials, optuna):  # another worker asked for the last one first
            trial.set_user_attr("surplus", True)
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            log.info("trial #%d not run: the study already holds its %d trials", trial.number, search.trials)
            break
        trial.set_user_attr("host", socket.gethostname())
        trial.set_user_attr("pid", os.getpid())
        train_settings, model_args = suggest(trial, search.model)
        trial_cfg = dataclasses.replace(
            cfg,
            **train_settings,
            model_args={search.model: model_args},
            out=str(search.folder / "runs" / f"trial-{trial.number}"),
        )

        def report(row, trial=trial):
            trial.report(row["val_loss"], row["epoch"])
            if trial.should_prune():
                raise optuna.TrialPruned()

        # with --track, each trial is a trackio run of the study's group, its parameters as config
        tracker = (
            tracking.TrackedRun(
                cfg.track_project,
                f"{search.study_name}-trial-{trial.number}",
                {"study": search.study_name, "trial": trial.number, **trial.params},
                space=cfg.track_space,
                group=search.study_name,
            )
            if cfg.track
            else None
        )
        try:
            run = fit(
                search.model, trial_cfg, splits, dev, resolved=resolved, on_epoch=report, report=False, tracker=tracker
            )
        except optuna.TrialPruned:
            shutil.rmtree(trial_cfg.out_dir, ignore_errors=True)
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            log.info("trial #%d pruned", trial.number)
            if tracker is not None:
                tracker.mark(pruned=1)
                tracker.finish()
            continue
        except KeyboardInterrupt:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            raise
        except Exception:  # one bad combination (say, out of memory) fails its trial, not the search
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            shutil.rmtree(trial_cfg.out_dir, ignore_errors=True)
            if tracker is not None:
                tracker.finish()
            failures += 1
            log.exception("trial #%d failed (%d in a row)", trial.number, failures)
            if failures >= MAX_FAILURES_IN_A_ROW:
                raise
            continue
        failures = 0
        if tracker is not None:
            tracker.mark(pruned=0, best_val_loss=run["best_val_loss"], best_val_acc=run["best_val_acc"])
            tracker.finish()
        shutil.rmtree(trial_cfg.out_dir, ignore_errors=True)  # a trial keeps no weights, only its numbers
        trial.set_user_attr("val_acc", run["best_val_acc"])
        study.tell(trial, run["best_val_loss"])
        log.info(
            "trial #%d: validation loss %.4f, accuracy %.4f", trial.number, run["best_val_loss"], run["best_val_acc"]
        )
    return finish_search(study, cfg, search, optuna)


def finish_search(study, cfg: TrainConfig, search: SearchConfig, optuna) -> SearchResult:
    """best.json and the two plots, from the study as it stands."""
    done, pruned, _ = _counts(study, optuna)
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if not complete:
        raise ValueError(f"the study {search.study_name} in {search.storage_url} has no complete trial yet")
    best = study.best_trial
    train_settings, model_args = suggest(optuna.trial.FixedTrial(best.params), search.model)
    defaults = next((t for t in complete if t.user_attrs.get("defaults")), None)
    payload = {
        "model": search.model,
        "dataset": cfg.dataset,
        "trial": best.number,
        "val_loss": best.value,
        "val_acc": best.user_attrs.get("val_acc"),
        "params": best.params,
        "train_config": train_settings,
        "model_args": model_args,
        "defaults_val_loss": defaults.value if defaults else None,
        "defaults_val_acc": defaults.user_attrs.get("val_acc") if defaults else None,
        "search_budget": {"epochs": cfg.epochs, "limit": cfg.limit, "seed": cfg.seed},
        "study": search.study_name,
        "storage": search.storage_url if search.storage is None else "(given URL)",
        "finished_trials": done,
        "pruned_trials": pruned,
    }
    atomic_write_json(search.folder / "best.json", payload)
    save_plots(study, search.folder, optuna)
    return SearchResult(payload, done, pruned, search.folder)


def save_plots(study, folder: Path, optuna) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as ovm

    for name, plot in (
        ("optimization_history.png", ovm.plot_optimization_history),
        ("param_importances.png", ovm.plot_param_importances),
    ):
        try:
            ax = plot(study)
        except (ValueError, RuntimeError) as e:  # importances need two or more complete trials
            log.warning("%s not drawn: %s", name, e)
            continue
        fig = (ax if not hasattr(ax, "__len__") else ax[0]).figure
        fig.set_size_inches(9, 5.5)
        fig.tight_layout()
        fig.savefig(folder / name, dpi=100)
        plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    """python -m fmnist.training.search MODEL [--trials N] [--storage URL] [training flags]."""
    import argparse
    import sys

    from fmnist.models.registry import MODEL_NAMES
    from fmnist.training.flags import add_recipe_flags, config_from, positive_float, positive_int

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    p = argparse.ArgumentParser(
        prog="python -m fmnist.training.search",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("model", choices=MODEL_NAMES, help="the model whose hyperparameters are searched")
    p.add_argument(
        "--trials", type=positive_int, default=20, help="finished trials the study should hold (default: %(default)s)"
    )
    p.add_argument("--timeout", type=positive_float, help="start no new trial after this many seconds")
    p.add_argument(
        "--storage", help="an Optuna storage URL (default: sqlite:///search/MODEL/study.db); one per shared study"
    )
    p.add_argument("--search-dir", default="search", help="where MODEL/ goes (default: %(default)s)")
    add_recipe_flags(p, models=False)
    ns = p.parse_args(argv)
    cfg = dataclasses.replace(config_from(p, ns, argv), models=[ns.model])
    try:
        result = run_search(
            cfg,
            SearchConfig(
                model=ns.model,
                trials=ns.trials,
                timeout_s=ns.timeout,
                storage=ns.storage,
                folder=Path(ns.search_dir) / ns.model,
            ),
        )
    except (ImportError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(result.summary())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
