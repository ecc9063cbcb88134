from streamsink.bench.run import main

raise SystemExit(main())
