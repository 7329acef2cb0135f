"""Native document → signed event: detect, validate, map, seal and sign, publish, keep what is
rejected."""
