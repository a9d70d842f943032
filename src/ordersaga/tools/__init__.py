"""Tools that run the whole system: the demo, the invariants' check, chaos and the bench."""
