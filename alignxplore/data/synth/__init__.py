"""SFT-data synthesis: teacher stages, filtering judge, merge, post-processing."""
