"""One module per subcommand.

Each module defines NAME, HELP, register(parser) and run(args, console) -> int;
cli.py discovers them, so adding a subcommand touches no other file.
"""
