"""`python -m virttui` runs the CLI."""

from virttui.cli import main

raise SystemExit(main())
