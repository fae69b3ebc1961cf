"""Judging records, not replies: record checks, names checklists, known-answer comparison."""
