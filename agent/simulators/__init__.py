"""Simulated devices: protocol-faithful fakes the agent runs in simulated mode and the tests drive."""
