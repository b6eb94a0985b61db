"""Pure numpy / ASE / quippy science layer: no AiiDA imports (see DESIGN.md)."""
