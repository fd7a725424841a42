"""Experiment configurations: one file per experiment, each with `get_config()`."""
