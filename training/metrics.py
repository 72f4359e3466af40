"""Evaluation of churn scores: discrimination, calibration, and what a capacity-limited team gets."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """Mean |observed rate - mean score| over equal-count bins, weighted by bin size.

    Equal-count bins, because with a few percent positives equal-width bins leave most of the
    scale empty.
    """
    order = np.argsort(p)
    chunks = np.array_split(order, bins)
    return float(sum(len(c) * abs(y[c].mean() - p[c].mean()) for c in chunks if len(c)) / len(p))


def top_share_metrics(y: np.ndarray, score: np.ndarray, share: float) -> tuple[float, float]:
    """(lift, capture) in the top `share` of customers ranked by score."""
    k = max(1, int(round(share * len(y))))
    top = np.argsort(-score, kind="stable")[:k]
    base = y.mean()
    precision = y[top].mean()
    return (precision / base if base > 0 else float("nan")), (
        y[top].sum() / y.sum() if y.sum() else float("nan")
    )


def churn_metrics(
    y: np.ndarray, p: np.ndarray, *, capacity: int, top_shares: tuple[float, ...], probabilities: bool = True
) -> dict[str, float]:
    """All headline metrics of one score on one labelled snapshot.

    Args:
        y: 0/1 churn labels.
        p: scores (probabilities when `probabilities`, else any ranking score).
        capacity: customers contacted in a day: precision and recall among the top `capacity`.
        top_shares: shares of customers for lift and capture.
        probabilities: False for ranking-only scores; calibration metrics are then skipped.
    """
    y = np.asarray(y, dtype=float)
    p = np.asarray(p, dtype=float)
    out = {
        "roc_auc": float(roc_auc_score(y, p)),
        "pr_auc": float(average_precision_score(y, p)),
        "base_rate": float(y.mean()),
    }
    if probabilities:
        clipped = np.clip(p, 1e-6, 1 - 1e-6)
        out |= {
            "brier": float(brier_score_loss(y, clipped)),
            "log_loss": float(log_loss(y, clipped, labels=[0, 1])),
            "ece": expected_calibration_error(y, p),
            "mean_score": float(p.mean()),
        }
    for share in top_shares:
        lift, capture = top_share_metrics(y, p, share)
        out[f"lift_top{int(round(share * 100))}"] = float(lift)
        out[f"capture_top{int(round(share * 100))}"] = float(capture)
    k = min(capacity, len(y))
    top = np.argsort(-p, kind="stable")[:k]
    out["precision_at_capacity"] = float(y[top].mean())
    out["recall_at_capacity"] = float(y[top].sum() / y.sum()) if y.sum() else float("nan")
    return out


def ranking_metrics(ranked: list[list[str]], actual: list[str]) -> dict[str, float]:
    """MAP@3 and hit rate @1/@3 of ranked product lists against the product actually opened."""
    hits1 = hits3 = average_precision = 0.0
    for products, truth in zip(ranked, actual, strict=True):
        top3 = products[:3]
        hits1 += float(bool(top3) and top3[0] == truth)
        if truth in top3:
            hits3 += 1
            average_precision += 1.0 / (top3.index(truth) + 1)  # one relevant item: AP = 1 / rank
    n = max(len(actual), 1)
    return {"map_at_3": average_precision / n, "hit_rate_at_1": hits1 / n, "hit_rate_at_3": hits3 / n}
