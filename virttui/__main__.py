"""`python -m virttui` runs the CLI, exactly as the `virttui` command does."""

from virttui.runtime.launch import main

raise SystemExit(main())
