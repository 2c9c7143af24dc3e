"""The Pulumi program: read the stack's mlops:* config, build the platform, export its endpoints."""

from platform_components.kubernetes import program

program()
