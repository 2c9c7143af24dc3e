"""mlflow 3.17.2 and skops 0.16.0 (the installed wheels): how log_model_for_platform logs a model."""

from __future__ import annotations

from upstream_facts import Fact

_SKLEARN = "mlflow/mlflow mlflow/sklearn/__init__.py@v3.17.2"

FACTS = [
    Fact(
        key="mlflow.sklearn.serialization_formats",
        statement="mlflow.sklearn.log_model serialises with skops, pickle or cloudpickle; only skops loads "
        "without unpickling, and the skops trusted types are kept in the MLmodel file",
        source=_SKLEARN,
        value=("skops", "pickle", "cloudpickle"),
    ),
    Fact(
        key="mlflow.sklearn.skops_checked_at_save",
        statement="With the skops format log_model dumps the model and loads it back with "
        "skops_trusted_types, so a type not listed fails at logging time, not at serving time",
        source=_SKLEARN,
        value=True,
    ),
    Fact(
        key="mlflow.sklearn.pyfunc_predict_fns",
        statement="pyfunc_predict_fn may name predict (the default) or predict_proba, predict_log_proba, "
        "predict_joint_log_proba or score; the pyfunc's predict then calls that method",
        source=_SKLEARN,
        value=("predict", "predict_proba", "predict_log_proba", "predict_joint_log_proba", "score"),
    ),
    Fact(
        key="skops.untrusted_types",
        statement="skops.io.get_untrusted_types lists the types of a dump outside skops' default trusted "
        "set; skops.io.load refuses the dump unless each is passed in trusted",
        source="skops-dev/skops skops/io/_persist.py@v0.16.0",
        value="get_untrusted_types",
    ),
]
