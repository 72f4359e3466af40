"""MLflow models-from-code entry: the bundle as one pyfunc model (`mlflow.pyfunc.load_model`).

Input: feature rows (the bundle's feature columns). Output per row: calibrated churn probability,
customer value and value at risk.
"""

from __future__ import annotations

import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel


class ChurnBundleModel(PythonModel):
    def load_context(self, context) -> None:
        from serving.model_bundle import ModelBundle

        self.bundle = ModelBundle.load(context.artifacts["bundle"])

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
        prepared = self.bundle.prepare(model_input)
        probability = self.bundle.churn_probability(prepared)
        value = self.bundle.value(prepared)
        return pd.DataFrame(
            {"churn_probability": probability, "value": value, "value_at_risk": probability * value},
            index=model_input.index,
        )


mlflow.models.set_model(ChurnBundleModel())
