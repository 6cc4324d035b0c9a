"""mmadapt-lane: MULTI-LANE and the class-incremental protocol for multi-label class-incremental learning."""
