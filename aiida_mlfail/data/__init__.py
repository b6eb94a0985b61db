"""aiida_mlfail.data"""
