"""What the dask engine's lazy frames need beyond the engine-agnostic partition work.

The partitions and their validation are `features.partition_jobs`; training on the cluster
(`training.distributed`) turns them into a Dask dataframe (`dd.from_map`, one partition per
customer partition) and needs the frame's metadata from here.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from churn.config import AppConfig
from features.catalog import feature_catalog
from features.partition_jobs import Partitions, check_reject_shares, open_partitions, validated_partition

__all__ = ["Partitions", "open_partitions", "validated_partition", "check_reject_shares"]


def features_meta(config: AppConfig) -> pd.DataFrame:
    """The zero-row frame `build_features` returns, for Dask's metadata."""
    catalog = feature_catalog(config.features, tuple(config.products))
    columns = {}
    for spec in catalog:
        if spec.dtype == "category":
            columns[spec.name] = pd.Categorical([], categories=spec.categories)
        else:
            columns[spec.name] = np.array([], dtype=np.int64 if spec.dtype == "int" else np.float64)
    return pd.DataFrame(columns, index=pd.Index([], dtype=np.int64, name="customer_id"))
