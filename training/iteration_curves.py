"""Validation curves of a trained booster, iteration by iteration, computed where the rows are.

`lightgbm.dask` has no early stopping, so the dask engine trains every round and cuts the booster
where `lgb.early_stopping` would have stopped (`training.distributed`). Each function here turns
one partition's validation rows into numbers that add up over partitions: the summed log-loss
after each iteration (the next-product model), and, for the churn model, counts of each
iteration's margins by label on a fine grid, from which the validation AUC follows
(`auc_from_counts`). The churn model early-stops on AUC, as the local fit does
(`training.models.churn_settings`): it is calibrated on the same validation rows afterwards, so
its ranking is what the stopping should protect, and a raw log-loss punishes a shift in the
churn level between the training and the validation months that calibration takes off.
"""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd

AUC_BINS = 4096  # margin cells of the AUC counts: pairs within one cell count as ties
AUC_MARGIN = 16.0  # margins beyond +-16 (probabilities within 1e-7 of 0 or 1) share the end cells
CHUNK_ROWS = 20_000  # bounded memory: rows x trees leaf indices per chunk


def _leaf_values(booster: lgb.Booster) -> np.ndarray:
    """(trees, max leaves) leaf outputs: summed over a row's leaves they give its raw score."""
    trees = booster.dump_model()["tree_info"]
    values = np.zeros((len(trees), max(t["num_leaves"] for t in trees)))

    def walk(node: dict, row: int) -> None:
        if "leaf_index" in node:
            values[row, node["leaf_index"]] = node["leaf_value"]
        elif "left_child" in node:
            walk(node["left_child"], row)
            walk(node["right_child"], row)
        else:  # a tree that is a single leaf
            values[row, 0] = node.get("leaf_value", 0.0)

    for row, tree in enumerate(trees):
        walk(tree["tree_structure"], row)
    return values


def _margins(booster: lgb.Booster, X: pd.DataFrame, values: np.ndarray):
    """(start, the chunk's leaf outputs (rows, trees)), chunk by chunk."""
    for start in range(0, len(X), CHUNK_ROWS):
        leaves = booster.predict(X.iloc[start : start + CHUNK_ROWS], pred_leaf=True)
        leaves = np.asarray(leaves, dtype=np.int64).reshape(len(leaves), -1)
        yield start, values[np.arange(values.shape[0])[None, :], leaves]


def iteration_margin_counts(booster: lgb.Booster, X: pd.DataFrame, y: np.ndarray) -> np.ndarray:
    """(iterations, 2, AUC_BINS) int32 counts of a binary booster's margins on these rows after
    each iteration, non-churners then churners, on a grid of AUC_BINS cells over +-AUC_MARGIN:
    they add up over partitions, and `auc_from_counts` reads the AUC of every iteration off them."""
    values = _leaf_values(booster)
    iterations = values.shape[0]
    counts = np.zeros((iterations, 2, AUC_BINS), dtype=np.int64)
    y = np.asarray(y, dtype=np.int64)
    offsets = np.arange(iterations)[None, :] * AUC_BINS
    for start, outputs in _margins(booster, X, values):
        margin = np.cumsum(outputs, axis=1)
        cells = np.clip(
            ((margin + AUC_MARGIN) * (AUC_BINS / (2 * AUC_MARGIN))).astype(np.int64), 0, AUC_BINS - 1
        )
        target = y[start : start + CHUNK_ROWS]
        for label in (0, 1):
            chosen = (cells[target == label] + offsets).ravel()
            counts[:, label, :] += np.bincount(chosen, minlength=iterations * AUC_BINS).reshape(
                iterations, -1
            )
    return counts.astype(np.int32)


def auc_from_counts(counts: np.ndarray) -> np.ndarray:
    """Each iteration's ROC-AUC from `iteration_margin_counts` (summed over partitions): the share
    of (churner, non-churner) pairs the margin orders right, pairs within one cell counted half."""
    negative, positive = counts[:, 0, :].astype(float), counts[:, 1, :].astype(float)
    below = np.cumsum(negative, axis=1) - negative
    pairs = positive.sum(axis=1) * negative.sum(axis=1)
    return (positive * (below + 0.5 * negative)).sum(axis=1) / np.maximum(pairs, 1.0)


def iteration_losses(booster: lgb.Booster, X: pd.DataFrame, y: np.ndarray, classes: int) -> np.ndarray:
    """The summed log-loss of these rows after each boosting iteration (binary when classes == 1,
    else multiclass with `classes` trees per iteration)."""
    values = _leaf_values(booster)
    iterations = values.shape[0] // classes
    losses = np.zeros(iterations)
    y = np.asarray(y, dtype=np.int64)
    for start, outputs in _margins(booster, X, values):
        target = y[start : start + CHUNK_ROWS]
        if classes == 1:
            margin = np.cumsum(outputs, axis=1)
            sign = np.where(target == 1, -1.0, 1.0)[:, None]
            losses += np.logaddexp(0.0, sign * margin).sum(axis=0)
        else:
            margin = np.cumsum(outputs.reshape(len(target), iterations, classes), axis=1)
            log_norm = np.logaddexp.reduce(margin, axis=2)
            chosen = np.take_along_axis(margin, target[:, None, None].repeat(iterations, axis=1), axis=2)[
                ..., 0
            ]
            losses += (log_norm - chosen).sum(axis=0)
    return losses


def early_stopping_iteration(losses: np.ndarray, rounds: int) -> int:
    """The best iteration (1-based) `lgb.early_stopping(rounds)` picks from this loss curve (for a
    score to maximise, pass it negated)."""
    best, best_at = np.inf, 0
    for i, loss in enumerate(losses):
        if loss < best:
            best, best_at = loss, i
        elif i - best_at >= rounds:
            break
    return best_at + 1


__all__ = [
    "auc_from_counts",
    "early_stopping_iteration",
    "iteration_losses",
    "iteration_margin_counts",
]
