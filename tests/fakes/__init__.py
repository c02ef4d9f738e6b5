"""Stand-ins that speak a real protocol, for faults the real thing will not produce on demand."""
