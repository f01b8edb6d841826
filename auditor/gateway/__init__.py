"""The gateway's controller side: developer credentials (tokens.py), their lifecycle and the
view the gateway role renders onto the target."""
