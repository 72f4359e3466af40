"""Training: churn and next-best-product models, calibration, evaluation, MLflow logging and promotion."""
