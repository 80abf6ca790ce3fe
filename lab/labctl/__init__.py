"""The lab's steps and commands, one module per concern; lab/lab.py is the entry point that runs them."""
