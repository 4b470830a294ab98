"""Models shared by the memory tests: the textbook MLP (one hidden layer, no bias, ℓ2 penalty)
and a 6-layer ReLU MLP, with batch makers."""
import gradflow as gf
import gradflow.nn.functional as F

D, H, Q = 784, 256, 10
LAMBDA = 1e-3


def make_batch(n, d=D, classes=Q):
    return gf.randn(n, d), gf.randint(0, classes, (n,))


def textbook_loss(model):
    """J = L + s: cross-entropy plus λ/2 (‖W1‖² + ‖W2‖²), as in the textbook section."""
    def loss(output, target):
        return F.cross_entropy(output, target) + F.l2_penalty(model.parameters(), LAMBDA)
    return loss


