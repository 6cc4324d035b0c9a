"""mmadapt-deep: deep multimodal prompts (IVLP, MaPLe, PromptSRC, MMRL) on CLIP's text and image towers."""
