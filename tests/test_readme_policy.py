"""The README's policy table is the policy: every key of LoopPolicy with its default, and nothing else."""

from __future__ import annotations

import re
from pathlib import Path

from platform_components.settings import LoopPolicy

README = Path(__file__).resolve().parents[1] / "README.md"
DAY = 86400.0


def shown(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, tuple):
        return "[" + ", ".join(map(str, value)) + "]"
    return str(value)


def test_the_readme_lists_every_policy_key_with_its_default() -> None:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## The loop's policy") :]
    section = section[: section.index("\n## ", 1)]
    table = dict(re.findall(r"^\| `([a-z_]+)` \| `([^`]*)` \|", section, flags=re.M))
    policy = LoopPolicy()
    assert set(table) == set(LoopPolicy.model_fields)
    for name in LoopPolicy.model_fields:
        value = getattr(policy, name)
        if table[name].endswith("d") and isinstance(value, float):
            assert float(table[name][:-1]) * DAY == value, name
        else:
            assert table[name] == shown(value), name
