"""Stand-ins for hardware in tests and benchmarks: fault-injecting sources, synthetic videos, small pools."""
