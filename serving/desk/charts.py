"""The desk's charts, drawn on the server by matplotlib as SVG and embedded in the page as an image
(a data URI): nothing for the browser to fetch, no script to run (banks run the desk on closed
networks), and the page's content security policy stays strict (matplotlib styles its SVG
inline, which the policy refuses in the page itself but not inside an image)."""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

plt.rcParams.update(
    {"font.size": 9, "svg.fonttype": "none", "axes.spines.top": False, "axes.spines.right": False}
)
RISK, CALM, INK = "#b4413a", "#3a7bb4", "#333333"


def _svg(figure, title: str) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight")
    plt.close(figure)
    encoded = base64.b64encode(buffer.getvalue().encode()).decode()
    # an accessible name for the chart, and a class the page's tests and styles can find
    return f'<img class="chart" alt="{html.escape(title)}" src="data:image/svg+xml;base64,{encoded}">'


def contributions(labels: Sequence[str], values: Sequence[float], title: str) -> str:
    """Horizontal bars of SHAP contributions to the churn score (log-odds): red raises the risk."""
    figure, axis = plt.subplots(figsize=(6.4, 0.5 + 0.45 * max(len(labels), 1)))
    y = list(range(len(labels)))[::-1]
    axis.barh(y, values, color=[RISK if v > 0 else CALM for v in values])
    axis.set_yticks(y, labels)
    axis.axvline(0, color=INK, linewidth=0.8)
    axis.set_xlabel("contribution to the churn score (log-odds)")
    return _svg(figure, title)


def trend(dates: Sequence[str], probabilities: Sequence[float], title: str) -> str:
    """The churn probability on each past list."""
    figure, axis = plt.subplots(figsize=(6.4, 2.2))
    axis.plot(list(dates), [100 * p for p in probabilities], marker="o", color=RISK)
    axis.set_ylabel("churn probability (%)")
    axis.set_ylim(bottom=0)
    axis.tick_params(axis="x", labelrotation=30)
    return _svg(figure, title)


def bars(labels: Sequence[str], values: Sequence[float], title: str, xlabel: str) -> str:
    figure, axis = plt.subplots(figsize=(6.4, 0.5 + 0.35 * max(len(labels), 1)))
    y = list(range(len(labels)))[::-1]
    axis.barh(y, values, color=RISK)
    axis.set_yticks(y, [str(label) for label in labels])
    axis.set_xlabel(xlabel)
    return _svg(figure, title)


def stacked(dates: Sequence[str], series: dict[str, Sequence[float]], title: str, ylabel: str) -> str:
    """One stacked bar per date (e.g. the predicted kinds of churn on each list)."""
    figure, axis = plt.subplots(figsize=(6.4, 2.6))
    bottom = [0.0] * len(dates)
    colours = {"service_failure": RISK, "competitive": "#d99a2b", "natural": "#7a9a5b"}
    for name, values in series.items():
        axis.bar(list(dates), values, bottom=bottom, label=name, color=colours.get(name, "#999999"))
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    axis.set_ylabel(ylabel)
    axis.legend(frameon=False, fontsize=8)
    axis.tick_params(axis="x", labelrotation=30)
    return _svg(figure, title)


def intervals(
    labels: Sequence[str],
    values: Sequence[float],
    lows: Sequence[float],
    highs: Sequence[float],
    title: str,
    xlabel: str,
) -> str:
    """Point estimates with their 95% intervals (campaign impact from the control group)."""
    figure, axis = plt.subplots(figsize=(6.4, 0.6 + 0.4 * max(len(labels), 1)))
    y = list(range(len(labels)))[::-1]
    errors = [
        [v - lo for v, lo in zip(values, lows, strict=True)],
        [hi - v for v, hi in zip(values, highs, strict=True)],
    ]
    axis.errorbar(values, y, xerr=errors, fmt="o", color=CALM, ecolor=INK, capsize=3)
    axis.axvline(0, color=INK, linewidth=0.8)
    axis.set_yticks(y, [str(label) for label in labels])
    axis.set_xlabel(xlabel)
    return _svg(figure, title)


__all__ = ["bars", "contributions", "intervals", "stacked", "trend"]
