"""A drawing of a model's layers, from its framework-neutral spec alone (``draw_layers``): one box per top-level
layer, top to bottom from the input, each with the layer's type and settings, its output shape and its trainable
parameters (``shared.model.shapes``). A composite (``Sequential``, ``Residual``) is one box that summarises what it
holds, drawn as a stack.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import NamedTuple

from shared.model.rules import layer_rule
from shared.model.shapes import count_trainable, input_shape, output_shapes, trainable_params_by_layer
from shared.model.specs import (AvgPool2d, BatchNorm2d, Composite, Conv2d, Flatten, GlobalAvgPool2d, Layer, Linear,
                                MaxPool2d, ModelSpec, Normalize, ReLU, ReLU6, Residual, Sequential, named_leaves)
from shared.report.plots import pyplot
from shared.util.atomic import atomic_path

# Fill colours by what a layer does
COLOURS = {"input": "#f3f3f3", "scale": "#eeeeee", "conv": "#cfe2f3", "norm": "#fff2cc", "activation": "#d9ead3",
           "pool": "#fce5cd", "reshape": "#eeeeee", "linear": "#ead1dc", "group": "#d9d2e9"}
# Sizes, inches: the figure is laid out in inches, y growing downwards
WIDTH, BOX_LEFT, BOX_WIDTH, DETAIL_AT = 9.6, 0.3, 5.5, 1.25
SHAPE_AT, PARAMS_AT = 6.2, 9.3  # left edge of the shape column, right edge of the parameter column
ROW, GROUP_ROW, GAP = 0.46, 0.72, 0.24  # box heights (a composite's has two lines) and the arrow between boxes


class Label(NamedTuple):
    kind: str  # the layer's type as the spec names it
    detail: str  # its settings in a few words; a composite's second line follows a newline
    colour: str  # a key of COLOURS


@layer_rule("drawing")
def layer_label(layer: Layer) -> Label:
    """What a layer's box says about it."""


@layer_label.register
def _(layer: Normalize) -> Label:
    return Label("Normalize", "(x / 255 − mean) / std, per channel", "scale")


@layer_label.register
def _(layer: Conv2d) -> Label:
    detail = f"{layer.in_channels}→{layer.out_channels}, {layer.kernel}×{layer.kernel}"
    detail += f", stride {layer.stride}" if layer.stride != 1 else ""
    detail += f", pad {layer.padding}" if layer.padding else ""
    detail += ", depthwise" if layer.depthwise else ""
    return Label("Conv2d", detail + ("" if layer.bias else ", no bias"), "conv")


@layer_label.register
def _(layer: BatchNorm2d) -> Label:
    return Label("BatchNorm2d", f"{layer.channels} channels", "norm")


@layer_label.register(ReLU)
@layer_label.register(ReLU6)
def _(layer) -> Label:
    return Label(type(layer).__name__, "max(x, 0)" if isinstance(layer, ReLU) else "min(max(x, 0), 6)", "activation")


@layer_label.register(MaxPool2d)
@layer_label.register(AvgPool2d)
def _(layer) -> Label:
    padding = getattr(layer, "padding", 0)
    return Label(type(layer).__name__, f"{layer.kernel}×{layer.kernel}, stride {layer.stride}"
                 + (f", pad {padding}" if padding else ""), "pool")


@layer_label.register
def _(layer: GlobalAvgPool2d) -> Label:
    return Label("GlobalAvgPool2d", "mean over height and width", "pool")


@layer_label.register
def _(layer: Flatten) -> Label:
    return Label("Flatten", "C, H, W order", "reshape")


@layer_label.register
def _(layer: Linear) -> Label:
    return Label("Linear", f"{layer.in_features}→{layer.out_features}" + ("" if layer.bias else ", no bias"),
                 "linear")


def _contents(layer: Composite) -> str:
    """The elementary layers inside a composite, counted by type ("4 Conv2d · 4 BatchNorm2d · 4 ReLU"), or the one
    layer it holds with its settings."""
    leaves = [leaf for _, leaf in named_leaves(layer.children())]
    if len(leaves) == 1:
        return "{}  {}".format(*layer_label(leaves[0]))
    counts = Counter(type(leaf).__name__ for leaf in leaves)
    return " · ".join(f"{count} {kind}" for kind, count in counts.items())


@layer_label.register
def _(layer: Sequential) -> Label:
    blocks = [child for _, child in layer.layers]
    residual = sum(isinstance(child, Residual) for child in blocks)
    if residual == len(blocks):
        held = f"{len(blocks)} residual block{'s' if len(blocks) > 1 else ''}"
    elif any(isinstance(child, Composite) for child in blocks):
        held = f"{len(blocks)} blocks" + (f", {residual} of them residual" if residual else "")
    else:
        held = f"{len(blocks)} layer{'s' if len(blocks) > 1 else ''}"
    return Label("Sequential", f"{held}\n{_contents(layer)}", "group")


@layer_label.register
def _(layer: Residual) -> Label:
    shortcut = "a projection shortcut" if layer.shortcut else "the input added back"
    return Label("Residual", f"block with {shortcut}\n{_contents(layer)}", "group")


def _shape(shape: tuple[int, ...]) -> str:
    return " × ".join(str(size) for size in shape)


def draw_layers(spec: ModelSpec, path: Path) -> list[str]:
    """Draw ``spec`` into the PNG ``path``; return every text the drawing shows, top to bottom."""
    plt = pyplot()
    from matplotlib.patches import FancyBboxPatch

    shapes, params = output_shapes(spec), trainable_params_by_layer(spec)
    layers = dict(spec.layers)
    height, channels = input_shape(spec)[0], input_shape(spec)[2]
    rows = [("input", Label("image", "pixels 0–255", "input"), f"{height} × {height} × {channels} (H × W × C)", "")]
    rows += [(name, layer_label(layers[name]), _shape(shape), f"{params[name]:,}" if params[name] else "–")
             for name, shape in shapes]
    heights = [GROUP_ROW if "\n" in label.detail else ROW for _, label, _, _ in rows]
    top = 1.2  # the title and the column headings above the first box
    total = top + sum(heights) + GAP * (len(rows) - 1) + 0.75
    figure = plt.figure(figsize=(WIDTH, total))
    axis = figure.add_axes((0, 0, 1, 1))
    axis.set_xlim(0, WIDTH)
    axis.set_ylim(total, 0)
    axis.axis("off")
    texts: list[str] = []

    def write(x: float, y: float, text: str, **style) -> None:
        axis.text(x, y, text, va="center_baseline", **style)
        texts.append(text)

    write(BOX_LEFT, 0.35, f"{spec.name}: {spec.image_size} × {spec.image_size} RGB images, {spec.classes} classes",
          fontsize=13, fontweight="bold")
    for x, text, align in ((BOX_LEFT, "layer", "left"), (SHAPE_AT, "output (C × H × W)", "left"),
                           (PARAMS_AT, "trainable parameters", "right")):
        write(x, top - 0.3, text, fontsize=10, color="#555555", ha=align)
    y = top
    for index, ((name, label, shape, count), box) in enumerate(zip(rows, heights)):
        if index:  # the arrow from the box above
            axis.annotate("", (BOX_LEFT + BOX_WIDTH / 2, y), (BOX_LEFT + BOX_WIDTH / 2, y - GAP),
                          arrowprops={"arrowstyle": "-|>", "color": "#666666", "lw": 1.2, "shrinkA": 0, "shrinkB": 0})
        if label.colour == "group":  # a stack of boxes: the composite holds several layers
            for offset in (0.08, 0.04):
                axis.add_patch(FancyBboxPatch((BOX_LEFT + offset, y + offset), BOX_WIDTH, box,
                                              boxstyle="round,pad=0,rounding_size=0.06", facecolor=COLOURS["group"],
                                              edgecolor="#555555", linewidth=0.8))
        axis.add_patch(FancyBboxPatch((BOX_LEFT, y), BOX_WIDTH, box, boxstyle="round,pad=0,rounding_size=0.06",
                                      facecolor=COLOURS[label.colour], edgecolor="#555555", linewidth=0.8))
        middle = y + box / 2
        write(BOX_LEFT + 0.12, middle, name, fontsize=10.5, fontweight="bold", family="monospace")
        write(BOX_LEFT + DETAIL_AT, middle, f"{label.kind}  {label.detail}" if "\n" not in label.detail
              else f"{label.kind}: {label.detail}", fontsize=10, linespacing=1.5)
        write(SHAPE_AT, middle, shape, fontsize=10, family="monospace")
        if count:
            write(PARAMS_AT, middle, count, fontsize=10, family="monospace", ha="right")
        y += box + GAP
    y += 0.1 - GAP
    axis.plot((SHAPE_AT, PARAMS_AT), (y, y), color="#555555", linewidth=0.8)
    write(SHAPE_AT, y + 0.3, "total", fontsize=10, fontweight="bold")
    write(PARAMS_AT, y + 0.3, f"{count_trainable(spec):,}", fontsize=10, fontweight="bold", family="monospace",
          ha="right")
    with atomic_path(path) as part:
        figure.savefig(part, dpi=100, format="png")
    plt.close(figure)
    return texts
