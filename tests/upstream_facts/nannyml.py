"""NannyML's confidence-based performance estimation (CBPE): the method monitoring/estimate.py follows.

Read for the method only; the platform does not depend on NannyML and none of its code is copied.
"""

from __future__ import annotations

from upstream_facts import Fact

DOCS = "NannyML/nannyml docs/how_it_works/performance_estimation.rst@v0.13.1"
METRICS = "NannyML/nannyml nannyml/performance_estimation/confidence_based/metrics.py@v0.13.1"

FACTS = [
    Fact(
        key="nannyml.cbpe.expected_accuracy",
        statement=(
            "CBPE estimates accuracy as the mean over rows of the calibrated probability that the predicted "
            "label is right: p where the model predicts 1, 1 - p where it predicts 0"
        ),
        source=DOCS,
        value="mean(where(predicted == 1, p, 1 - p))",
    ),
    Fact(
        key="nannyml.cbpe.roc_auc_ranking",
        statement=(
            "CBPE's ROC AUC ranks the rows by the model's own (uncalibrated) score and cumulates the "
            "calibrated probabilities as expected true positives and their complements as expected false "
            "positives, then takes the area under expected TPR against expected FPR"
        ),
        source=METRICS,
        value="rank by model score, cumulate calibrated p",
    ),
    Fact(
        key="nannyml.cbpe.calibrator",
        statement=(
            "CBPE calibrates scores on the reference data with isotonic regression (scikit-learn "
            "IsotonicRegression, out_of_bounds='clip', increasing)"
        ),
        source="NannyML/nannyml nannyml/calibration.py@v0.13.1",
        value="isotonic",
    ),
    Fact(
        key="nannyml.cbpe.assumption",
        statement=(
            "CBPE stays accurate when P(X) changes and P(Y|X) stays the same (covariate shift) into regions "
            "the reference covered; it does not work under concept drift (P(Y|X) changes)"
        ),
        source=DOCS,
        value=("covariate shift", "concept shift"),
    ),
]
