"""Pinned models: the lock file, Ollama's store layout, GGUF import, hashing and verification."""
