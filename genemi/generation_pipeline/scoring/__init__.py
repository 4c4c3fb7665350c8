"""Scoring (stage ``score``): BLIP ITM (and optional CLIPScore) per caption on the variation, IVA per sibling group."""
