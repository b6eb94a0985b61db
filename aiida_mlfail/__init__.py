"""aiida-mlfail: find, explain and repair failures of machine-learned interatomic potentials with AiiDA."""

__version__ = '0.1.0'
