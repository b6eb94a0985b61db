"""Pure numpy / ASE / quippy science layer: no AiiDA imports."""
