"""Generic orchestration: saga definition, pure transitions, store and timers."""
