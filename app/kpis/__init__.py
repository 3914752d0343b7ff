"""Portfolio figures: lifecycle per quarter, monitoring coverage, approval lead time, open incidents."""
