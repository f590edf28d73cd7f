"""`python -m virttui` runs the CLI, exactly as the `virttui` command does."""

from virttui.launch import main

raise SystemExit(main())
