"""The package version, in a module of its own: the client and the server read it without importing `inferd`'s
__init__ (which names them, so importing it from them would close a circle)."""

__version__ = "0.1.0"
