"""``mlops fleet``: every declared model of every project, one row each, with its health and staleness.

- ``store_reader``: what the monitor store knows per model (latest checks, retrains, labels), in a few
  GROUP BY queries that run on SQLite and PostgreSQL alike;
- ``registry``: what MLflow's registry knows (alias -> version, the version's holdout baseline tags) over
  its REST API with the standard library's HTTP client;
- ``rows``: the rows (declarations joined to both), staleness verdicts, sorting and filtering;
- ``render``: the text table, JSON and the HTML page (inline SVG sparklines, sortable in the browser);
- ``cli``: the click command.

The command must answer for 1,000 models in well under a second from a fresh process, so nothing on its
path imports mlflow, pandas, numpy or scikit-learn (``bench/bench_fleet.py`` measures it;
``tests/fleet/test_imports.py`` checks the import list).
"""
