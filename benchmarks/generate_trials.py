"""Generate a large synthetic trials directory (valid against the schema) for scale tests."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.data.schema import resource_schema
from analysis.data.trials import default_trials_path

#: The generated trials have the shipped (baclofen) fields, so they carry its descriptor.
SUBJECT_DESCRIPTOR = default_trials_path() / "datapackage.json"


def write_generated_trials(directory: Path, n_studies: int, seed: int = 0) -> Path:
    """Write ``n_studies`` synthetic three-arm studies with binary and continuous outcomes.

    Every study has a placebo arm and two dose arms; every arm has one binary and one
    continuous outcome row, so the directory holds ``3 n`` arms, ``6 n`` outcome rows and
    ``6 n`` risk-of-bias rows (the subject descriptor declares that table).
    """
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(SUBJECT_DESCRIPTOR, directory / "datapackage.json")
    descriptor = json.loads(SUBJECT_DESCRIPTOR.read_text(encoding="utf-8"))
    ids = np.array([f"Synth{i:05d}" for i in range(n_studies)])
    per_arm = rng.integers(10, 200, size=(n_studies, 3))
    studies = pd.DataFrame({c: "" for c in resource_schema("studies", descriptor).columns},
                           index=range(n_studies), dtype=object)
    studies = studies.assign(
        study_id=ids, first_author="Synth", year=rng.integers(1990, 2025, n_studies),
        country="Nowhere", design="double-blind placebo-controlled", detoxified="unknown",
        psychosocial="unknown", treatment_weeks=12, n_randomised_total=per_arm.sum(axis=1),
        citation="synthetic", source_location="generated",
    )
    arm_ids = np.array(["placebo", "low", "high"])
    arms = pd.DataFrame({c: "" for c in resource_schema("arms", descriptor).columns},
                        index=range(3 * n_studies), dtype=object)
    arms = arms.assign(
        study_id=np.repeat(ids, 3), arm_id=np.tile(arm_ids, n_studies),
        role=np.tile(["control", "treatment", "treatment"], n_studies),
        intervention=np.tile(["placebo", "drug", "drug"], n_studies),
        dose_target_mg_day=np.tile([0, 30, 90], n_studies), n_randomised=per_arm.ravel(),
        source="generated", source_location="generated",
    )
    n = per_arm.ravel()
    events = rng.binomial(n, 0.3)
    outcomes = pd.DataFrame({c: "" for c in resource_schema("outcomes", descriptor).columns},
                            index=range(6 * n_studies), dtype=object)
    binary = np.arange(6 * n_studies) % 2 == 0
    outcomes = outcomes.assign(
        study_id=np.repeat(arms["study_id"].to_numpy(), 2),
        arm_id=np.repeat(arms["arm_id"].to_numpy(), 2),
        outcome=np.where(binary, "abstinence", "percent_days_abstinent"),
        outcome_detail="generated", timepoint_weeks=12, analysis_set="ITT",
        data_type=np.where(binary, "binary", "continuous"), derived="false",
        source="generated", source_location="generated",
    )
    outcomes.loc[binary, "events"] = events
    outcomes.loc[binary, "total"] = n
    outcomes.loc[~binary, "mean"] = np.round(rng.normal(50, 10, n.size), 2)
    outcomes.loc[~binary, "sd"] = np.round(rng.uniform(5, 30, n.size), 2)
    outcomes.loc[~binary, "n"] = n
    # the subject descriptor declares risk_of_bias.csv: six study-level rows per study,
    # "no information" for the five domains and "some concerns" overall (RoB 2's rule)
    domains = ["D1", "D2", "D3", "D4", "D5", "overall"]
    rob = pd.DataFrame({
        "study_id": np.repeat(ids, 6), "outcome": "all",
        "domain": np.tile(domains, n_studies),
        "judgement": np.tile(["no information"] * 5 + ["some concerns"], n_studies),
        "reason": "generated", "source": "generated", "source_location": "generated",
        "notes": "",
    })
    tables = (("studies", studies), ("arms", arms), ("outcomes", outcomes),
              ("risk_of_bias", rob))
    for name, frame in tables:
        frame.to_csv(directory / f"{name}.csv", index=False, lineterminator="\n")
    return directory
