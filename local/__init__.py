"""The local stack: a Monetate sandbox and AWS emulator wiring for tests and demos."""
