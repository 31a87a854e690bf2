"""Scripts the tests start in processes of their own (under torchrun, or as TF_CONFIG workers); each also runs by
hand."""
