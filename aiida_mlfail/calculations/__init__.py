"""aiida_mlfail.calculations"""
