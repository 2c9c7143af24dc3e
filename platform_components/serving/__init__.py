"""Serving: the V2 (Open Inference Protocol) client, request validation and the monitored MLServer runtime.

Import the submodules directly (``platform_components.serving.client``); this package imports nothing heavy.
"""
