"""`offgrid bench`: clients, task suite, runner, statistics, crossover and TCO."""
