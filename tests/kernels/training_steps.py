"""The few optimizer steps the emulated-device tests run on "cuda" and on the CPU to compare."""
import gradflow.nn.functional as F


def train_steps(model, optimizer, x, y, steps, loss=F.cross_entropy):
    """``steps`` steps of ``loss(model(x), y)``; returns each step's loss as a Python float."""
    losses = []
    for _ in range(steps):
        optimizer.zero_grad()
        value = loss(model(x), y)
        value.backward()
        optimizer.step()
        losses.append(value.item())
    return losses
