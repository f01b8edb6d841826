"""The llama.cpp engine's build recipe: portable flags, a cache keyed by them, a smoke test."""
