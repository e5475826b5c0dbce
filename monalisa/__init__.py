"""monalisa: a portrait whose eyes follow the person looking at it."""

__version__ = "0.1.0"
