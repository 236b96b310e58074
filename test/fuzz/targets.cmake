# One line per fuzz target; each parser module adds its own.
