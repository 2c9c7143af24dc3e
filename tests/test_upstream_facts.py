"""The upstream facts table itself: every fact cites where it was read, in one form."""

from __future__ import annotations

from upstream_facts import FACTS, SOURCE_PATTERN


def test_every_fact_cites_repo_path_and_tag() -> None:
    assert FACTS, "the upstream facts table is empty"
    malformed = {key: item.source for key, item in FACTS.items() if not SOURCE_PATTERN.match(item.source)}
    assert not malformed, f"facts whose source is not 'owner/repo path@tag': {malformed}"


def test_every_fact_states_itself_in_words() -> None:
    short = [key for key, item in FACTS.items() if len(item.statement.split()) < 4]
    assert not short, f"facts without a statement in words: {short}"
