"""mmadapt-kapt: knowledge-aware prompt tuning (KAPT, Kan et al., ICCV 2023) as mmadapt's documented reading."""
