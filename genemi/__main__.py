from genemi.cli import main

raise SystemExit(main())
