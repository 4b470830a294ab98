"""The training run the mixed-precision accuracy tests share: the digits, Adam, batch 64, loss
scaling, each run under ``gf.autocast`` or in float32 alone."""
import numpy as np

import gradflow as gf
import gradflow.nn.functional as F
from gradflow.data import load_digits


def trained_accuracy(make_model, epochs, mixed):
    """Test accuracy of ``make_model()`` after ``epochs`` epochs, float16 compute under autocast
    when ``mixed``; checks the logits' dtype each step and that the parameters stay float32."""
    data = load_digits()
    mean, std = data.x_train.mean(0), data.x_train.std(0) + 1e-3
    x_train, x_test = (data.x_train - mean) / std, (data.x_test - mean) / std
    gf.manual_seed(0)
    model = make_model()
    opt = gf.optim.Adam(model.parameters(), lr=3e-3)
    scaler = gf.optim.GradScaler(init_scale=2.0 ** 10, enabled=mixed)
    rng = np.random.default_rng(0)
    for _ in range(epochs):
        order = rng.permutation(len(x_train))
        for start in range(0, len(order), 64):
            batch = order[start:start + 64]
            opt.zero_grad()
            with gf.autocast(enabled=mixed):
                logits = model(gf.tensor(x_train[batch]))
                loss = F.cross_entropy(logits, data.y_train[batch])
            assert logits.dtype == (np.float16 if mixed else np.float32)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
    model.eval()
    with gf.no_grad(), gf.autocast(enabled=mixed):
        predictions = model(gf.tensor(x_test)).numpy().argmax(1)
    assert all(p.dtype == np.float32 for p in model.parameters())
    return (predictions == data.y_test).mean()
