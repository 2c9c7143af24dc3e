"""Grafana's table transformations the fleet dashboard uses (kubernetes/fleet_dashboard.py).

UNVERIFIED at the pinned tag: Grafana's source is not in ../shared/upstream and was not fetched for this
change; the ids below are Grafana's DataTransformerID values as documented in Grafana's transformation
reference (Grafana 12 docs: "Join by field", "Organize fields by name"), cited at the tag the chart pins.
A Grafana bump or a review with the source at hand re-reads them.
"""

from __future__ import annotations

from upstream_facts import Fact

SOURCE = "grafana/grafana packages/grafana-data/src/transformations/transformers/ids.ts@v12.3.2"

FACTS = [
    Fact(
        key="grafana.transform.join_by_field",
        statement="The 'Join by field' transformation has the id joinByField and takes options byField (the "
        "column to join on) and mode (outer keeps rows missing from some frames); unverified at the tag",
        source=SOURCE,
        value=("joinByField", "byField", "outer"),
    ),
    Fact(
        key="grafana.transform.organize",
        statement="The 'Organize fields by name' transformation has the id organize and takes options "
        "excludeByName and renameByName (field name -> bool / new name); unverified at the tag",
        source=SOURCE,
        value=("organize", "excludeByName", "renameByName"),
    ),
    Fact(
        key="grafana.prometheus.table_value_columns",
        statement="A Prometheus instant query with format 'table' gives one row per series, a column per "
        "label and its value as 'Value #<refId>' when a panel has several queries; unverified at the tag",
        source="grafana/grafana pkg/promlib/converter/prom.go@v12.3.2",
        value="Value #{ref_id}",
    ),
]
