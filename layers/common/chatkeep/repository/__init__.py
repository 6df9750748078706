"""Data access. The only package that talks to DynamoDB (through chatkeep.aws clients)."""
