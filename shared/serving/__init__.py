"""Serving a trained model over HTTP, written once for both backends: the Open Inference Protocol (KServe v2, as
Triton speaks it), ``POST /predict`` for image files, Prometheus metrics and a page to try the model in a browser.
``shared.commands.serve`` is the command line and the API; the backends only load the model."""
