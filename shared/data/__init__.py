"""Layer 1: datasets in memory (``dataset``), their readers (digits, image folders, CIFAR-100, flowers) and the
random crops and flips. Never imports ``shared.model``."""
