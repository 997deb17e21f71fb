"""Data preparation: behaviour scorer, scoring, pruning into RL rows, raw-dataset converters, noisy sets."""
