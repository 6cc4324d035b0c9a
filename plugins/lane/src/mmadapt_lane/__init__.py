"""mmadapt-lane: MULTI-LANE and the class-incremental protocol, for multi-label and single-label data."""
