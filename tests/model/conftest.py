import pytest

from training.pipeline import TrainingResult, train_models


@pytest.fixture(scope="session")
def trained(sample, config) -> TrainingResult:
    return train_models(sample.tables, config)
