"""A catalog project's space outside Kubernetes: MLflow (experiment, models, grants) and KFP (experiment).

``sync.py`` computes it from the catalog and applies it idempotently, archiving (never deleting) projects
that left the catalog; ``cli.py`` is ``mlops project sync``. Pulumi cannot reach MLflow or KFP, so in the
cluster a Job runs the sync (``kubernetes/project_space.py``). ``docs/project-space.md`` is the user's guide.
"""
