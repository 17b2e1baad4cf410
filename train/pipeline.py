"""``train(config) -> run directory``: intake, model, the two training stages, evaluation, outputs."""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

from runtime.contract import InputContract
from runtime.errors import EdgeFlagError
from runtime.fitness import LineTargets, describe, judge, not_applicable
from runtime.fsutil import atomic_write_json, atomic_write_text
from runtime.rates import format_rate
from runtime.roi import parse_roi
from train.config import TrainConfig
from train.evaluate import classification_metrics, defect_recall, false_alarm_rate, predict
from train.intake import Dataset, prepare_dataset
from train.rundir import FILES, run_name, write_manifest
from train.strategy import check_cluster, get_strategy, is_chief
from train.weights import WeightsChoice, resolve_weights


def _configure_tensorflow(config: TrainConfig):
    """Threads, seeds and determinism, then the ``tf.distribute`` strategy, which is returned.

    None of the first three starts the runtime, and nothing may before the strategy exists:
    MultiWorkerMirroredStrategy configures the collective ops at start-up (see train.strategy).
    """
    import keras
    import tensorflow as tf

    if config.threads:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(config.threads)
            tf.config.threading.set_inter_op_parallelism_threads(min(2, config.threads))
        except RuntimeError:  # TensorFlow was already initialised in this process: keep its pools
            print("note: TensorFlow already running, --threads ignored in this process", file=sys.stderr)
    keras.utils.set_random_seed(config.seed)  # Python, NumPy and TensorFlow seeds
    if config.deterministic:
        # Seeds alone leave multi-threaded reductions free to sum in any order, which moved the casting
        # model's int8 accuracy by a test image or two between otherwise identical runs.
        tf.config.experimental.enable_op_determinism()
    return get_strategy(config.strategy)


def _writes_run(config: TrainConfig) -> bool:
    """False for a non-chief worker of a cluster (a TF_CONFIG left set under another strategy is ignored)."""
    return config.strategy != "multi-worker" or is_chief()


def _prepare_run_dir(config: TrainConfig) -> tuple[Path, bool]:
    """The run folder and whether this call created it."""
    if not _writes_run(config):  # it trains, but must not write the shared run folder
        scratch = Path(tempfile.mkdtemp(prefix="edgeflag-worker-")) / run_name(config)
        scratch.mkdir()
        return scratch, True
    run_dir = Path(config.out) / run_name(config)
    created = not run_dir.exists()
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "run.json").unlink(missing_ok=True)  # a re-run is incomplete until its manifest is rewritten
    return run_dir, created


def _intake(config: TrainConfig, contract: InputContract, run_dir: Path, created: bool) -> Dataset:
    try:
        return prepare_dataset(config, contract, run_dir)
    except EdgeFlagError:
        if created:  # do not leave an empty run folder behind a dataset error
            shutil.rmtree(run_dir, ignore_errors=True)
        raise


def _fit(config: TrainConfig, ds: Dataset, weights: WeightsChoice, strategy):
    from train.model import build_classifier
    from train.stages import finetune, train_scratch

    with strategy.scope():
        clf = build_classifier(config, len(ds.labels), weights)
    data = (ds.subset("train"), ds.subset("val"))
    history = []
    if not weights.pretrained:
        history.append(train_scratch(clf, data, config, ds.class_weight, strategy))
        return clf, history
    if config.epochs_head:
        clf, head = _stage_one(clf, data, config, ds, weights, strategy)
        history.append(head)
    if config.epochs_finetune:
        history.append(finetune(clf, data, config, ds.class_weight, strategy))
    return clf, history


def _stage_one(clf, data, config: TrainConfig, ds: Dataset, weights: WeightsChoice, strategy):
    """Cache features, choose the head's recipe on them, rebuild for another pooling, train the head."""
    from train.model import assemble
    from train.stages import head_features, train_head

    features = head_features(clf, data, config)
    head = train_head(clf, features, config, ds.class_weight, strategy, len(ds.labels))
    pooling = head["recipe"]["pooling"]
    if clf.pooling != pooling:
        with strategy.scope():  # the same backbone, other pooling: the cached features still hold
            weights_now = clf.head.get_weights()
            clf = assemble(config, clf.backbone, len(ds.labels), pooling)
            clf.head.set_weights(weights_now)
    return clf, head


def _evaluate(clf, ds: Dataset, config: TrainConfig) -> dict:
    metrics = {"ok_label": ds.ok_label}
    for split in ("test", "val"):
        x, y = ds.subset(split)
        m = classification_metrics(predict(clf.model, x, config.batch_size), y, ds.labels)
        if ds.ok_label is not None:
            caught = defect_recall(m, ds.ok_label)
            m["defect_recall"] = round(caught["value"] or 0.0, 6)
            m["defect_recall_ci"] = caught
            m["false_alarm_rate_ci"] = false_alarm_rate(m, ds.ok_label)
        metrics[split] = m
    t = metrics["test"]
    targets = LineTargets(config.min_defect_recall, config.max_false_alarm_rate)
    metrics["fitness"] = (not_applicable(targets) if ds.ok_label is None else
                          judge(t["defect_recall_ci"], t["false_alarm_rate_ci"], targets,
                                "test split, top-1 (export judges again at its thresholds)"))
    return metrics


def _save(run_dir: Path, clf, ds: Dataset, config: TrainConfig, history: list, metrics: dict) -> None:
    from train.plots import plot_confusion, plot_training_curves

    clf.model.save(run_dir / FILES["keras_model"])
    saved = run_dir / FILES["saved_model"]
    if saved.exists():
        shutil.rmtree(saved)
    clf.model.export(str(saved), verbose=False)
    atomic_write_text(run_dir / FILES["labels"], "".join(f"{lab}\n" for lab in ds.labels))
    atomic_write_json(run_dir / FILES["config"], {**config.to_dict(), "name": run_dir.name})
    atomic_write_json(run_dir / FILES["metrics"], metrics)
    atomic_write_json(run_dir / FILES["history"], history)
    (run_dir / "plots").mkdir(exist_ok=True)
    plot_training_curves(history, run_dir / FILES["plots"]["training_curves"])
    plot_confusion(metrics["test"], run_dir / FILES["plots"]["confusion_matrix"])


def train(config: TrainConfig) -> Path:
    """Train a classifier on ``config.data`` and write the run directory (train.rundir); return its path.

    A non-chief worker of a cluster trains in step with the chief into a scratch copy, deleted when
    done; the path returned there is that of the (deleted) copy.
    """
    t0 = time.perf_counter()
    # Weights, cluster and data are checked before TensorFlow is even imported: mistakes fail in a second.
    weights = resolve_weights(config)
    check_cluster(config.strategy)
    run_dir, created = _prepare_run_dir(config)
    try:
        _train_into(run_dir, created, config, weights, t0)
    finally:
        if not _writes_run(config):  # its copy served only to run every step the chief runs
            shutil.rmtree(run_dir.parent, ignore_errors=True)
    return run_dir


def _train_into(run_dir: Path, created: bool, config: TrainConfig, weights: WeightsChoice, t0: float) -> None:
    contract = input_contract(config)
    ds = _intake(config, contract, run_dir, created)
    strategy = _configure_tensorflow(config)
    clf, history = _fit(config, ds, weights, strategy)
    metrics = {**_evaluate(clf, ds, config), "best_stage": best_stage(history), "recipe": _recipe(history)}
    _save(run_dir, clf, ds, config, history, metrics)
    write_manifest(run_dir, config=config, labels=ds.labels, ok_label=ds.ok_label, contract=contract,
                   data_dir=ds.root, weights=weights.to_dict(), dataset_fingerprint=ds.fingerprint)
    if config.verbose and _writes_run(config):
        print(summary(run_dir, ds, weights, history, metrics, time.perf_counter() - t0), file=sys.stderr)
    elif config.verbose:
        print(f"=== worker done in {time.perf_counter() - t0:.0f} s: the chief writes the run into "
              f"{Path(config.out).resolve()} ===", file=sys.stderr)


def input_contract(config: TrainConfig) -> InputContract:
    """The pixels the model will take, as the training config describes them."""
    return InputContract(config.image_size, config.image_size, interpolation=config.interpolation,
                         roi=parse_roi(config.roi), resize=config.resize)


def _recipe(history: list[dict]) -> dict | None:
    head = next((h for h in history if h["stage"] == "head"), None)
    return None if head is None else {k: head["recipe"].get(k) for k in ("pooling", "lr_head", "searched",
                                                                            "chosen_on")}


def best_stage(history: list[dict]) -> str | None:
    """The stage whose weights the run kept: the last one that improved on the one before it."""
    kept = [h["stage"] for h in history if h.get("improved", True)]
    return kept[-1] if kept else None


def _soup_words(history: list[dict]) -> str:
    """``: the weight average of A + B`` when stage 2 kept an average of several models, else nothing."""
    tune = next((h for h in history if h["stage"] == "finetune"), {})
    names = tune.get("soup", {}).get("ingredients", [])
    return f": the weight average of {' + '.join(names)}" if tune.get("improved") and len(names) > 1 else ""


def _recipe_line(recipe: dict) -> str:
    how = f"chosen on the {recipe['chosen_on']}" if recipe["searched"] else "as configured"
    return f"recipe   pooling {recipe['pooling']}, lr_head {recipe['lr_head']:.2g} ({how})"


def summary(run_dir: Path, ds: Dataset, weights: WeightsChoice, history: list, metrics: dict,
            secs: float) -> str:
    """The closing summary: data, weights, stages, test figures, where the outputs are."""
    r = ds.report
    sizes = "/".join(str(int((ds.split_of == s).sum())) for s in ("train", "val", "test"))
    stages = ", ".join(f"{h['stage']} {len(h.get('loss', []))} epochs (best {h['best_epoch']}, "
                       f"{h['seconds']:.0f} s)" for h in history)
    t = metrics["test"]
    per = "; ".join(f"{lab} P {m['precision']:.3f} R {m['recall']:.3f}" for lab, m in t["per_class"].items())
    return "\n".join([
        f"=== run {run_dir.name}: done in {secs:.0f} s ===",
        f"data     {len(ds.paths)} images, train/val/test {sizes}; {len(r['skipped'])} skipped, "
        f"{len(r['duplicates']['groups'])} duplicate groups (see data_report.md)"
        + (f"; split {r['given_split']}" if r.get("given_split") else ""),
        f"weights  {weights.used} (requested {weights.requested})",
        f"stages   {stages or 'none'}",
        f"kept     the model after {metrics.get('best_stage') or 'none'}{_soup_words(history)} (fine-tuning "
        "only where its val-loss gain is evidence: history.json)",
        *([_recipe_line(metrics["recipe"])] if metrics.get("recipe") else []),
        f"test     accuracy {format_rate(t['accuracy_ci'])}",
        *([f"         defect recall {format_rate(t['defect_recall_ci'])}, good parts flagged "
           f"{format_rate(t['false_alarm_rate_ci'])}"] if "defect_recall_ci" in t else []),
        f"fitness  {describe(metrics['fitness'])}",
        f"classes  {per}",
        f"outputs  {run_dir}  (model.keras, saved_model/, metrics.json, plots/)",
        f"next     python -m export --run {run_dir}",
    ])
