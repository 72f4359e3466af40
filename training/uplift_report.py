"""The uplift models' evidence and held-out Qini curves, as MLflow artifacts of the training run."""

from __future__ import annotations

from training.uplift import UpliftResult


def qini_figure(result: UpliftResult):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 4.5))
    for action, curve in result.curves.items():
        axis.plot(curve["share"], curve["kept"], marker=".", label=action.replace("_", " "))
        axis.plot([0, 1], [0, curve["kept"].iloc[-1]], color="#bbb", linewidth=0.8)
    axis.axhline(0, color="#999", linewidth=0.8)
    axis.set_xlabel(
        "share of the held-out campaign rows, by predicted uplift (contact and playbook action cross "
        "fitted: every month, cross-fitted, adjusted for risk)"
    )
    axis.set_ylabel("customers kept (against the controls)")
    axis.set_title("Qini curves: any contact and per action (grey: random targeting)")
    axis.legend(frameon=False, fontsize=7)
    figure.tight_layout()
    return figure


def log_uplift(result: UpliftResult) -> None:
    import matplotlib.pyplot as plt
    import mlflow

    if result.model is not None:
        mlflow.log_dict(result.model.meta, "uplift/evidence.json")
    mlflow.log_dict({"notes": result.notes}, "uplift/notes.json")
    if result.curves:
        figure = qini_figure(result)
        mlflow.log_figure(figure, "uplift/qini.png")
        plt.close(figure)
        for action, curve in result.curves.items():
            mlflow.log_dict(curve.to_dict(orient="list"), f"uplift/qini_{action}.json")
