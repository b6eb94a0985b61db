"""aiida_mlfail.workflows"""
