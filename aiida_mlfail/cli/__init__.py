"""aiida_mlfail.cli: the ``aiida-mlfail`` command (main.py) and the ``verdi data mlfail`` group (data.py)."""
