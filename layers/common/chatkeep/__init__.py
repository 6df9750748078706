"""chatkeep: the shared package of the CommonLayer (domain, data access, auth, both APIs' logic)."""
