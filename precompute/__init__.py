"""The offline stage: turn a portrait into a frame pool (see monalisa.pool.format for the format)."""
