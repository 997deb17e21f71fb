"""The weak scorer: its training text, scoring of users, pruning by score."""
