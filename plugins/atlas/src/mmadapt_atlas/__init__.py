"""mmadapt-atlas: task vectors composed with learned anisotropic scaling (aTLAS, Zhang et al., NeurIPS 2024)."""
