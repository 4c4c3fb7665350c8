"""Text-to-image (stage ``t2i``): each negative caption of ``negcaption`` painted as a whole new image."""
