"""The chat table's stream processor: exact message counts, the search index, cascades.

See README.md ("The stream processor")."""
