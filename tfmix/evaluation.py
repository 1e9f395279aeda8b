"""Evaluation of a trained run or model on its test split: the numbers
that `tfmix evaluate`, `publish` (the zoo cards) and the benchmark scripts
report (ELBO terms, clustering accuracy / NMI / ARI, classification error,
kNN errors, the importance-weighted log-likelihood).
"""

import os

import numpy as np

from tfmix import data as tdata
from tfmix import metrics as tmetrics
from tfmix.runs import PROGRESS_FILE, load_run
from tfmix.utils import read_json


#: images generated per cluster for the judged-generation measures of
#: `evaluate_model` (the cards; issue 17 item 2)
GENERATION_PER_CLUSTER = 100


def judge_dataset(dataset):
    """The dataset whose judge classifier scores a model of `dataset`
    (binarised MNIST's samples are digits: MNIST's judge)."""
    return "mnist" if dataset == "binarized_mnist" else dataset


def has_judge(dataset):
    return os.path.exists(os.path.join(tmetrics.judge_dir(judge_dataset(dataset)), "model.keras"))


def generation_metrics(model, dataset, x_test, y_test, per_cluster=GENERATION_PER_CLUSTER, judge=None):
    """Judged generation, generation purity and self-consistency of a
    model's samples (`tfmix.metrics.generation_report`, `per_cluster`
    images of each cluster, seed 0), with their per-cluster lists; the judge
    is the published classifier of `dataset` unless given.

    Example:
    >>> generation_metrics(model, "mnist", x_test, y_test)["generation_purity"]  # doctest: +SKIP
    """
    if judge is None:
        judge = tmetrics.load_judge(judge_dataset(dataset))
    return tmetrics.generation_report(model, judge, x_test, y_test, per_cluster=per_cluster, seed=0)


def scalar_generation(report):
    """The three measures of a `generation_report`, without the per-cluster lists."""
    return {k: report[k] for k in ("judged_generation", "generation_purity", "self_consistency")}


def evaluate_run(run_dir, ll_samples=100, ll_limit=None, knn_ks=(3, 5, 10), verbose=0):
    """Every metric of a run on its dataset's test split, as a dict.

    kNN errors (`knn_error_k*`: on `encode`, the posterior means;
    `knn_sample_error_k*`: on one posterior sample per image, for models
    with `sample_latent`) use the training split as reference; on
    binarized_mnist the labels are matched from grey-level MNIST.
    `verbose=1`: a progress bar for the log-likelihood (the long part).
    """
    config, model = load_run(run_dir)
    progress = read_json(os.path.join(run_dir, PROGRESS_FILE), default={})
    return evaluate_model(config, model, epochs=progress.get("epochs_done"), ll_samples=ll_samples,
                          ll_limit=ll_limit, knn_ks=knn_ks, verbose=verbose)


def evaluate_model(config, model, epochs=None, ll_samples=100, ll_limit=None, knn_ks=(3, 5, 10),
                   generation_per_cluster=GENERATION_PER_CLUSTER, verbose=0):
    """`evaluate_run` for a model and its run config (e.g. a zoo preset's).

    With labels, more than one cluster and a published judge for the
    dataset, the judged-generation measures of `generation_metrics` are
    added (`generation_per_cluster` images per cluster; 0: not measured).
    """
    x_test, y_test = tdata.split_arrays(config)
    results = {"model": config["model"], "dataset": config["dataset"], "epochs": epochs}
    test_ds = tdata.array_batches(x_test, y_test)
    for k, v in model.evaluate(test_ds, verbose=0, return_dict=True).items():
        results[f"test_{k}"] = float(v)
    y_test = tdata.split_labels(config, "test", y_test)
    if y_test is not None:
        probs = model.cluster_probs(x_test)
        if model.num_clusters > 1:  # one component: nothing to cluster
            results.update(tmetrics.clustering_report(y_test, probs))
        if model.labelled:
            results["test_error"] = float(np.mean(probs.argmax(-1) != y_test))
        if generation_per_cluster and model.num_clusters > 1 and has_judge(config["dataset"]):
            results.update(scalar_generation(generation_metrics(
                model, config["dataset"], x_test, y_test, per_cluster=generation_per_cluster)))
            results["generation_per_cluster"] = int(generation_per_cluster)
        x_train, y_train = tdata.split_arrays(config, "train")
        y_train = tdata.split_labels(config, "train", y_train)
        latents = {"knn_error": (model.encode(x_train), model.encode(x_test))}
        try:
            latents["knn_sample_error"] = (model.sample_latent(x_train, seed=1), model.sample_latent(x_test, seed=2))
        except NotImplementedError:
            pass
        for name, (z_train, z_test) in latents.items():
            for k in knn_ks:
                if k <= len(y_train):
                    results[f"{name}_k{k}"] = tmetrics.knn_error(z_train, y_train, z_test, y_test, k)
    if ll_samples:
        x_ll = x_test if ll_limit is None else x_test[: int(ll_limit)]
        ll = model.log_likelihood(x_ll, num_samples=int(ll_samples), verbose=verbose)
        results["test_log_likelihood"] = float(ll.mean())
        results["ll_samples"] = int(ll_samples)
        results["ll_examples"] = int(len(x_ll))
    return results
