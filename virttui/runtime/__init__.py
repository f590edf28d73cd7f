"""The process around the console: start-up, polling, garbage collection, terminal and crash handling."""
