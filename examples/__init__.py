"""Sample projects built on the platform's public contract; each has its own README."""
