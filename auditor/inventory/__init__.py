"""Facts about the machine and the engine, gathered without judging them."""
