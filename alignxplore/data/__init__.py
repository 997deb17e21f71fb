"""The data pipeline: SFT data synthesis, the behaviour scorer, RL-row pruning, converters from
raw public datasets, and noisy-history sets (docs/formats.md §7)."""
