"""aiida_mlfail.parsers"""
