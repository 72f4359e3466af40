"""The simulated bank behind `features.generator`: population, causes, monthly flows, campaigns."""
