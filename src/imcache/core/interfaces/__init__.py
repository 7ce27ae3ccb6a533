"""Interface definitions: Boutiques descriptors, catalogues, argument parsing, argv rendering."""
