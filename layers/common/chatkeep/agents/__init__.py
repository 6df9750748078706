"""Managed agent turns: the Converse request a turn sends, the model client, and the turn runner."""
