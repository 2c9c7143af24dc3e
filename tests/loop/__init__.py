"""Tests of the loop (platform_components/loop), and the second project they close it on."""
