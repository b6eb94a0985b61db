"""Programs that run inside a CalcJob on the compute node: no AiiDA imports."""
