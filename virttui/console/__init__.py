"""The console: the Textual App, the context its controllers get, the action runner and dialog flows."""
