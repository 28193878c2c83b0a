"""The store: every SQL statement of the service. schema.py gathers the whole schema."""
