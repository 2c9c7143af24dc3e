"""The offline render's garbage collection: paused while the program runs, frozen after, collected next."""

from __future__ import annotations

import gc

import pulumi_kubernetes as k8s

from platform_components.render import run_program


def _fifty_config_maps() -> None:
    for index in range(50):
        k8s.core.v1.ConfigMap(f"cm-{index}", metadata={"name": f"cm-{index}"}, data={"key": "value"})


def test_a_render_freezes_its_objects_and_the_next_render_collects_them() -> None:
    frozen = []
    for _ in range(4):
        run_program({}, program=_fifty_config_maps)
        assert gc.isenabled()
        frozen.append(gc.get_freeze_count())
    # Each render leaves its objects frozen (about 8,000 here, never scanned by the collections after it);
    # the next render collects them first, so a process that renders again and again keeps one render's.
    assert frozen[3] - frozen[1] < 2000, frozen
