"""Dash callbacks: thin functions from inputs to a pure helper to outputs."""
