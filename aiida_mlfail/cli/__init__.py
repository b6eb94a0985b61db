"""aiida_mlfail.cli"""
