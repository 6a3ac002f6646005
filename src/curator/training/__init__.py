"""Train speech-enhancement models on a curated subset (the ``train`` stage).

``data`` joins the manifest with the curated list and yields sampling-rate-grouped crops, ``models`` holds the
registry of architectures (``bsrnn``), ``loss`` the baseline's multi-resolution loss, ``module`` the Lightning
module, ``backends`` the trainers (this package's ``native`` one and the ``official`` URGENT checkout), and
``checkpoint`` the self-describing checkpoint that evaluation loads.
"""
