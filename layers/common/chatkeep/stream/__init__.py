"""The chat table's stream processor: exact message counts, the search index, cascades.

See docs/architecture.md ("The stream processor")."""
