"""``gradflow graph``: draw the computational graph of the textbook MLP, or of a checkpoint's model.

The textbook network (one hidden layer, no biases, the L2 penalty) is built with its variables
named as in the figure, so ``--compact`` reproduces the figure: x, W1 -> z -> h; h, W2 -> o;
o, y -> L; W1, W2 -> s; L, s -> J. Without it, every primitive op is drawn with the bytes it saved.
"""
from __future__ import annotations

import sys
import warnings

import numpy as np

from . import CommandError


def register(subparsers):
    parser = subparsers.add_parser("graph", help="draw the computational graph of the textbook MLP (DOT/SVG/PNG)",
                                   description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="textbook_mlp.svg", metavar="PATH",
                        help="output file: .dot, .svg, .png or .pdf (default: textbook_mlp.svg; "
                             "the DOT text is written beside it)")
    parser.add_argument("--compact", action="store_true",
                        help="draw only the named variables, merging the ops between them (the textbook figure)")
    parser.add_argument("--values", action="store_true", help="annotate small tensors with their values")
    parser.add_argument("--grads", action="store_true", help="annotate small tensors with the gradient of J")
    parser.add_argument("--inputs", type=int, default=4, metavar="D", help="input size d (default: 4)")
    parser.add_argument("--hidden", type=int, default=5, metavar="H", help="hidden size h (default: 5)")
    parser.add_argument("--outputs", type=int, default=3, metavar="Q", help="output size q (default: 3)")
    parser.add_argument("--batch", type=int, default=1, help="examples in the batch (default: 1, as the textbook)")
    parser.add_argument("--weight-decay", type=float, default=0.1, metavar="LAMBDA",
                        help="λ of the L2 penalty s = λ/2 (‖W1‖² + ‖W2‖²) (default: 0.1)")
    parser.add_argument("--activation", default="relu", help="φ, the hidden activation (default: relu)")
    parser.add_argument("--checkpoint", metavar="PATH",
                        help="draw the model of a 'gradflow train' checkpoint instead (one batch of zeros)")
    parser.set_defaults(func=run_graph)


def textbook_mlp(d=4, hidden=5, q=3, batch=1, weight_decay=0.1, activation="relu", seed=0):
    """The textbook's objective J and its variables by name: ``(J, {tensor: name})``.

    z = W1 x, h = φ(z), o = W2 h, L = l(o, y) (softmax cross-entropy), s = λ/2 (‖W1‖² + ‖W2‖²),
    J = L + s; rows of x are examples, so W1 x is ``linear(x, W1)``.
    """
    import gradflow as gf
    import gradflow.nn.functional as F

    if min(d, hidden, q, batch) < 1:
        raise CommandError(f"sizes must be positive, got d={d}, h={hidden}, q={q}, batch={batch}")
    phi = getattr(F, activation, None)
    if phi is None or activation in ("linear", "dropout") or not callable(phi):
        raise CommandError(f"unknown activation {activation!r}; try relu, tanh, sigmoid, gelu")
    rng = np.random.default_rng(seed)
    x = gf.tensor(rng.standard_normal((batch, d)).astype(np.float32))
    y = gf.tensor(rng.integers(0, q, size=batch))
    W1 = gf.tensor((rng.standard_normal((hidden, d)) / np.sqrt(d)).astype(np.float32), requires_grad=True)
    W2 = gf.tensor((rng.standard_normal((q, hidden)) / np.sqrt(hidden)).astype(np.float32), requires_grad=True)
    z = F.linear(x, W1)
    h = phi(z)
    o = F.linear(h, W2)
    L = F.cross_entropy(o, y)
    s = F.l2_penalty([W1, W2], weight_decay)
    J = L + s
    names = {x: "x", y: "y", W1: "W1", W2: "W2", z: "z", h: "h", o: "o", L: "L", s: "s", J: "J"}
    return J, names


def _checkpoint_graph(path):
    import gradflow as gf
    from ..nn import MLP
    from ..nn.functional import cross_entropy
    from .train import _load_checkpoint

    checkpoint = _load_checkpoint(path)
    sizes, activation = checkpoint.config["sizes"], checkpoint.config["activation"]
    model = MLP(sizes, activation=activation)
    model.load_state_dict(checkpoint.model_state)
    x, y = gf.zeros(2, sizes[0]), gf.tensor(np.zeros(2, dtype=np.int64))
    logits = model(x)
    loss = cross_entropy(logits, y)
    return loss, {x: "x", y: "y", logits: "logits", loss: "loss"}, model


def run_graph(args):
    from .. import viz

    model = None
    if args.checkpoint:
        root, names, model = _checkpoint_graph(args.checkpoint)
        title = f"{args.checkpoint}"
    else:
        root, names = textbook_mlp(args.inputs, args.hidden, args.outputs, args.batch, args.weight_decay,
                                   args.activation)
        title = "textbook MLP with L2 penalty: J = l(W2 φ(W1 x), y) + λ/2 (‖W1‖² + ‖W2‖²)"
    # draw() warns when Graphviz is missing; a command says so in one line of its own instead of
    # Python's warning format (which repeats the calling source line).
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RuntimeWarning)
        written = viz.draw(root, args.out, names=names, parameters=model, compact=args.compact,
                           values=args.values, grads=args.grads, title=title)
    for warning in caught:
        print(f"gradflow graph: warning: {warning.message}", file=sys.stderr)
    for path in written:
        print(path)
    return 0
