"""Test doubles that stand at the narrowest boundary we cannot run here (see docs/testing.md)."""
