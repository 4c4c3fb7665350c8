"""Scoring backends: image-text matching of each variation image with its captions."""

from __future__ import annotations

from genemi.generation_pipeline.backends import BackendRegistry

#: name -> "module:Class" (each class: ``Class(ScoreConfig, StageContext)``)
SCORERS = BackendRegistry("score", "--scorer", {
    "blip": "genemi.generation_pipeline.scoring.blip:BlipMatcher",
})
