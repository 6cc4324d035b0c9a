"""Builtin plugins: registered first, through the same path as third-party plugins."""
