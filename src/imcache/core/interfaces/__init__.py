"""Interface definitions: Boutiques descriptors, their catalogue, argument parsing and argv rendering."""
