"""Inpainting (stage ``inpaint``): each planned variation painted into its item's masked crop window."""
