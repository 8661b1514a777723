"""`kirvis run`: a suite of experiments in one process through chaoslib (see `suite`).

Configure logging (`logs.configure_logging`) before importing `suite`: chaoslib replaces the logzero
module that activity modules log through, and a module imported earlier would keep the real one.
"""
