"""What tests share: the app under test, paths, a stepped clock, Pilot moves, real-host waits."""
