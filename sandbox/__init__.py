"""The world around the oracles on one machine, for development, tests and the demo.

Product code never imports this package.
"""
