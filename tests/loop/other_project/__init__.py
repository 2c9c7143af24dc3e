"""A second project on the platform: a churn classifier, unrelated to the credit-default example.

It exists to show that a model enters the loop through the platform's contract alone
(``platform_components.pipelines``: ``log_model_for_platform``, ``load_labelled_rows``): a different model
(logistic regression), different data (``data.py``) and two pipeline steps (``components.py``), with the
platform inputs the retrainers pass (``pipeline.py``). Its package is ``loop.other_project`` (``tests/`` is
on ``sys.path``; ``run_local`` puts it on the steps' ``PYTHONPATH``).
"""
