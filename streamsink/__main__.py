from streamsink.cli import main

raise SystemExit(main())
