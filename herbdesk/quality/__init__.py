"""Record quality checks: names checklist matching and related lookups (Qt-free)."""
