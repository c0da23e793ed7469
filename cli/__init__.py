"""The ``fsanet`` command line (installed as the import package ``fsanet_cli``)."""
