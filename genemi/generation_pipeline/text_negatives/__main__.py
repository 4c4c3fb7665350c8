from genemi.negatives.command import main

raise SystemExit(main())
