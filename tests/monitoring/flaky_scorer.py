"""An MLflow model "from code" for the cardinality tests: a logistic score that fails on a negative income.

The failure is the model's own, raised for a request our validation accepts, so the runtime's 5xx path is
reachable on purpose (a real model would fail the same way on data it cannot handle). A file, not a class
in a test module: MLflow stores the file with the model, so a serving process loads it without the tests
on its import path.
"""

import mlflow
import numpy as np


class FlakyScorer(mlflow.pyfunc.PythonModel):
    """Positive-class probability rises with ``debt_ratio``; a negative ``income`` is a model failure."""

    def predict(self, context, model_input, params=None):  # noqa: ARG002 - MLflow's signature
        if (model_input["income"] < 0).any():
            raise ValueError("income must not be negative")
        positive = 1.0 / (1.0 + np.exp(-(6.0 * model_input["debt_ratio"].to_numpy() - 2.0)))
        return np.column_stack([1.0 - positive, positive])


mlflow.models.set_model(FlakyScorer())
