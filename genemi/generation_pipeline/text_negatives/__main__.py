from genemi.generation_pipeline.text_negatives.command import main

raise SystemExit(main())
