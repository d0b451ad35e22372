"""Physics models of the simulated lab: plain numpy, no I/O, each testable on its own."""
