"""Dataset recipes: each module registers one dataset with ``@DATASETS.register(name)``."""
