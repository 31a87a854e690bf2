"""The backends mirror each other: same module names, same public functions, same parameter names."""

import importlib
import inspect
import pkgutil

import pytest

import cnnlab_tf
import cnnlab_torch


def modules(package) -> set[str]:
    return {info.name for info in pkgutil.iter_modules(package.__path__) if info.name != "tests"}


def public_functions(module) -> dict[str, list[str]]:
    return {name: list(inspect.signature(value).parameters)
            for name, value in vars(module).items()
            if inspect.isfunction(value) and not name.startswith("_") and value.__module__ == module.__name__}


# Layer translation helpers only one framework needs: PyTorch modules already follow the spec's conventions, while
# Keras needs padding, BatchNorm, tap-name and per-variable layout translation; TensorFlow selects devices globally.
# Mixed precision is a context around the forward pass in PyTorch (autocast) and a dtype policy of the layers,
# fixed when they are created, in Keras. The benchmark's seed-lab image pipeline is torchvision's, so only the PyTorch
# worker times it. PyTorch's BatchNorm synchronises over torchrun's processes with its own collectives; Keras builds
# mirrored variables inside tf.distribute's scope and places data and rows per replica inside one process; so
# only PyTorch wraps its model for several processes (DDP: ``parallel``), where Keras's mirrored model already is
# every replica's. ExecuTorch's runtime is the one that prints start-up notes (quiet_executorch). A PyTorch model
# carries its precision as an attribute (model_precision), where a Keras model's layers hold a dtype policy. Keras's
# variables need a layout rule per layer type (layer_variables); PyTorch's state_dict is the canonical layout.
# The backend contract itself (shared.training.backend) is checked by mypy: this test covers the modules behind it.
# torch.distributed's process group is torch's own process state, read where it is needed (current_world,
# broadcast, finish); Keras's collectives run over the strategy the backend holds, so they take it
# (broadcast_over, wait_for_workers, mirrored).
BACKEND_SPECIFIC = {"quiet_executorch", "current_device", "to_module", "conv_padding", "batchnorm_arguments", "output_layer_name",
                    "canonical_variables", "autocast", "dtype_policy", "time_data_pipeline", "summed",
                    "sum_over_processes", "scope", "current_world", "broadcast", "finish", "broadcast_over",
                    "wait_for_workers", "mirrored", "on_every_replica", "replica_rows",
                    "unmirrored_model", "parallel", "model_precision", "set_model_precision", "layer_variables"}


def test_same_module_names():
    assert modules(cnnlab_torch) == modules(cnnlab_tf)


@pytest.mark.parametrize("name", sorted(modules(cnnlab_torch) - {"train", "backend"}))
def test_same_public_functions_and_parameters(name):
    torch_functions = public_functions(importlib.import_module(f"cnnlab_torch.{name}"))
    tf_functions = public_functions(importlib.import_module(f"cnnlab_tf.{name}"))
    shared_names = torch_functions.keys() & tf_functions.keys()
    assert {"build_model", "train_steps", "export_onnx", "set_weights", "get_weights"} & set(torch_functions) \
        <= shared_names
    for function in sorted(shared_names):
        assert torch_functions[function] == tf_functions[function], f"{name}.{function} parameters differ"
    only_one = torch_functions.keys() ^ tf_functions.keys()
    assert only_one <= BACKEND_SPECIFIC, f"functions only one backend has: {sorted(only_one - BACKEND_SPECIFIC)}"
