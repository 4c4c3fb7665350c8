"""``python -m genemi.generation_pipeline.gallery``: the same as ``genemi generate gallery``."""

from genemi.generation_pipeline.gallery.command import main

raise SystemExit(main())
