"""Everything Qt lives here; the rest of herbdesk imports no Qt."""
