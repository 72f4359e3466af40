"""The learned uplift of each retention action, as the list and the API apply it.

Learned on the bank's randomised campaigns (`training/uplift.py`, an R-learner): a linear model of
any contact's relative change of the churn probability within the horizon, and for each action
one on top of it; the uplift of action a for a customer is P(churn | no contact) - P(churn | a), the
churn probability the contact takes away (negative: the contact pushes the customer away). Where an action has little randomised evidence, the learned uplift is
shrunk toward the playbook's configured effect (`P(churn) x effect`), in proportion to the
evidence: `learned_share = events / (events + prior_events)`, with `events` the fewer of the
churners among the action's customers and among the controls.

Saved beside the bundle as `uplift/uplift.json`: the evidence, and each effect model's intercept
and weights on the standardised features.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from features.campaigns import CONTROL

CONTACT = "contact"


def effect_basis(x: np.ndarray, spec: dict[str, Any], feature_index: dict[str, int]) -> np.ndarray:
    """The effect models' inputs: numeric features centred and scaled as in training (missing at
    the mean, clipped to five scales), then an indicator per non-reference level of each categorical."""
    numeric = x[:, [feature_index[n] for n in spec["numeric"]]].astype(float)
    mean, scale = np.asarray(spec["mean"], dtype=float), np.asarray(spec["scale"], dtype=float)
    columns = [np.clip(np.nan_to_num((numeric - mean) / scale, nan=0.0), -5.0, 5.0)]
    for name, levels in spec["levels"].items():
        column = x[:, feature_index[name]]
        columns.append((column[:, None] == np.asarray(levels, dtype=float)[None, :]).astype(float))
    return np.column_stack(columns)


def apply_effect(z: np.ndarray, effect: dict[str, Any]) -> np.ndarray:
    return effect["b"] + z @ np.asarray(effect["w"], dtype=float)


class UpliftModel:
    """Linear relative effects per action on the bundle's features (an R-learner's), and what each
    action's estimate rests on."""

    def __init__(self, meta: dict[str, Any]):
        self.meta = meta
        self.actions: list[str] = list(meta["actions"])
        self.feature_index: dict[str, int] = {n: j for j, n in enumerate(meta.get("feature_names", []))}
        self.learned_share: dict[str, float] = {
            a: float(meta["learned_share"].get(a, 0.0)) for a in self.actions
        }

    @classmethod
    def load(cls, directory: str | Path) -> UpliftModel | None:
        path = Path(directory) / "uplift.json"
        return cls(json.loads(path.read_text())) if path.exists() else None

    def save(self, directory: str | Path) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "uplift.json").write_text(json.dumps(self.meta, indent=2))
        return directory

    def learned(self, x: np.ndarray, probability: np.ndarray) -> dict[str, np.ndarray]:
        """P(churn | control) - P(churn | action) per action that has a model of its own: the
        learned relative effect times the customer's churn probability (a contact can take away
        only the risk there is, and a sleeping dog's added risk is at most the rest)."""
        effects = self.meta.get("effects") or {}
        if CONTACT not in effects:
            return {}
        z = effect_basis(x, effects["basis"], self.feature_index)
        p = np.clip(np.asarray(probability, dtype=float), 0.0, 1.0)
        any_contact = apply_effect(z, effects[CONTACT])
        return {
            a: np.clip(-p * (any_contact + apply_effect(z, effects[a])), -(1.0 - p), p)
            for a in self.actions
            if a in effects
        }

    def uplift(
        self, x: np.ndarray, probability: np.ndarray, effects: dict[str, float]
    ) -> dict[str, np.ndarray]:
        """Per action: the learned uplift shrunk toward the playbook's `probability x effect`.
        Actions without a model (or without evidence) get the playbook's figure alone."""
        learned = self.learned(x, probability)
        out = {}
        for action, effect in effects.items():
            prior = probability * float(effect)
            share = self.learned_share.get(action, 0.0) if action in learned else 0.0
            out[action] = share * learned[action] + (1.0 - share) * prior if share > 0 else prior
        return out


__all__ = ["CONTACT", "CONTROL", "UpliftModel", "apply_effect", "effect_basis"]
