"""offgrid: provision, audit and benchmark an offline AI coding workstation."""

__version__ = "0.1.0"
