"""CPS adapter: case updates rendered as CPS XML; charging decisions and hearing outcomes in."""
