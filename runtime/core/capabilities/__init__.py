"""Capabilities: the one vocabulary and the one check shared by every sandbox (see policy.py)."""
