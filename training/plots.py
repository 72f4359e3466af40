"""Evaluation and SHAP plots, returned as matplotlib figures for `mlflow.log_figure`."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # headless: figures are written to files, never shown

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.metrics import precision_recall_curve, roc_curve


def evaluation_figures(y: np.ndarray, scores: dict[str, np.ndarray]) -> dict[str, plt.Figure]:
    """ROC, precision-recall, calibration, cumulative gain and lift for each named score."""
    figures = {}
    fig, ax = plt.subplots(figsize=(5, 5))
    for name, s in scores.items():
        fpr, tpr, _ = roc_curve(y, s)
        ax.plot(fpr, tpr, label=name)
    ax.plot([0, 1], [0, 1], ":", color="grey")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC (test snapshot)")
    ax.legend()
    figures["roc.png"] = fig

    fig, ax = plt.subplots(figsize=(5, 5))
    for name, s in scores.items():
        precision, recall, _ = precision_recall_curve(y, s)
        ax.plot(recall, precision, label=name)
    ax.axhline(y.mean(), linestyle=":", color="grey", label="base rate")
    ax.set(xlabel="recall", ylabel="precision", title="Precision-recall (test snapshot)")
    ax.legend()
    figures["precision_recall.png"] = fig

    fig, ax = plt.subplots(figsize=(5, 5))
    model = next(iter(scores.values()))
    order = np.argsort(model)
    bins = np.array_split(order, 10)
    predicted, observed = [model[b].mean() for b in bins], [y[b].mean() for b in bins]
    ax.plot(predicted, observed, "o-", label="model (equal-count deciles)")
    # zoom to the deciles: with a few percent churners, a 0-1 scale squeezes them into a corner
    top = 1.15 * max(*predicted, *observed, 1e-3)
    ax.plot([0, top], [0, top], ":", color="grey", label="perfect")
    ax.set(xlabel="mean predicted probability", ylabel="observed churn rate", title="Calibration")
    ax.set(xlim=(0, top), ylim=(0, top))
    ax.legend()
    figures["calibration.png"] = fig

    fig, (gain_ax, lift_ax) = plt.subplots(1, 2, figsize=(10, 4.5))
    share = np.arange(1, len(y) + 1) / len(y)
    for name, s in scores.items():
        ranked = y[np.argsort(-s, kind="stable")]
        gain = np.cumsum(ranked) / max(ranked.sum(), 1)
        gain_ax.plot(share, gain, label=name)
        lift_ax.plot(share, gain / share, label=name)
    gain_ax.plot([0, 1], [0, 1], ":", color="grey")
    gain_ax.set(
        xlabel="share of customers contacted", ylabel="share of churners reached", title="Cumulative gain"
    )
    lift_ax.axhline(1.0, linestyle=":", color="grey")
    lift_ax.set(xlabel="share of customers contacted", ylabel="lift", title="Lift", xlim=(0.01, 1))
    gain_ax.legend()
    figures["gain_lift.png"] = fig
    return figures


def shap_figures(contributions: pd.DataFrame, features: pd.DataFrame, top: int = 3) -> dict[str, plt.Figure]:
    """SHAP beeswarm and bar summaries, and dependence plots for the top drivers."""
    import shap

    names = [c for c in contributions.columns if c != "bias"]
    values = contributions[names].to_numpy()
    shown = features[names].copy()
    for column in shown.columns:
        if isinstance(shown[column].dtype, pd.CategoricalDtype):
            shown[column] = shown[column].cat.codes.astype(float)
    figures = {}
    # shap draws on the current figure: give it a fresh one, or it paints over the last plot made
    plt.figure()
    shap.summary_plot(values, shown, show=False, max_display=20)
    figures["shap_beeswarm.png"] = plt.gcf()
    plt.figure()
    shap.summary_plot(values, shown, plot_type="bar", show=False, max_display=20)
    figures["shap_bar.png"] = plt.gcf()
    ranking = np.abs(values).mean(axis=0).argsort()[::-1][:top]
    for k in ranking:
        fig, ax = plt.subplots(figsize=(5, 4))
        shap.dependence_plot(int(k), values, shown, ax=ax, show=False, interaction_index=None)
        figures[f"shap_dependence_{names[k]}.png"] = fig
    return figures
