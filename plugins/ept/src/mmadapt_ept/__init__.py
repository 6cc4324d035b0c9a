"""mmadapt-ept: EPT's decomposed prompts with prompt fusion and multi-space projection, on CLIP's text
tower (``ept``) and on ViT image towers (``ept-visual``)."""

__version__ = "0.1.0"
