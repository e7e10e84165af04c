"""Training side: COCO datasets, augmentation, heatmap targets, losses, the loop and evaluation.

Nothing here imports torch at module import time except the modules that need it (dataset, losses, loop).
"""
