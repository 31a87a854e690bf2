"""The PyTorch backend of cnnlab; ``cnnlab_tf`` mirrors it module by module."""


def load_backend():
    """The backend, imported when first needed (PyTorch takes seconds to load); mirrors ``cnnlab_tf.load_backend``."""
    from cnnlab_torch.backend import BACKEND

    return BACKEND
