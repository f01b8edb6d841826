"""`offgrid ide-config`: what a developer's IDE is handed (models.py picks the models per role,
files.py renders and writes Continue's config.yaml and VS Code's settings.json)."""
