"""mmadapt-lit: CLIP-guided backlit image enhancement (CLIP-LIT, CLIP-LIT-Latent, RAVE) with Zero-DCE enhancers."""

__version__ = "0.1.0"
