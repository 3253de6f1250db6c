from evreid.cli import main

raise SystemExit(main())
