"""`gradflow memory --model transformer:...`: the sweep over sequence length, in process."""
import json

import pytest

from gradflow.cli import main

SPEC = ["--model", "transformer:d=16,heads=2,ff=24,layers=1,vocab=50,classes=5", "--batch-sizes", "2,4",
        "--seq-len", "8,16,24", "--device", "cpu", "--no-progress"]
D, HEADS, FF, CLASSES = 16, 2, 24, 5


@pytest.mark.parametrize("attention", ["math", "efficient"])
def test_sequence_sweep_fits_the_hand_derived_l_and_l2_terms(attention, tmp_path, capsys):
    path = tmp_path / "memory.json"
    assert main(["memory", *SPEC, "--attention", attention, "--budget", "32MiB", "--json", str(path)]) == 0
    out = capsys.readouterr().out
    assert "fit over L" in out and "longest sequence at batch 2" in out
    fit = json.loads(path.read_text())["fits_over_seq_len"]["retained"]
    # Per example: the encoder layer (gradflow/memory/README.md, input an activation: the embeddings),
    # the final LayerNorm's x̂ and 1/σ, and a fixed part: the pooled vector and the logits.
    if attention == "math":
        linear, quadratic = 4 * (8 * D + FF + 2) + 4 * (D + 1), 4 * HEADS
    else:
        linear, quadratic = 4 * (9 * D + FF + 2 + HEADS) + 4 * (D + 1), 0
    assert fit["quadratic_bytes"] == pytest.approx(quadratic, abs=1e-6)
    assert fit["linear_bytes"] == pytest.approx(linear)
    assert fit["fixed_bytes"] == pytest.approx(4 * (D + CLASSES))


def test_sequence_sweep_errors_are_one_line(capsys):
    assert main(["memory", *SPEC[:4], "--seq-len", "8,16"]) == 2
    assert "at least three" in capsys.readouterr().err
    assert main(["memory", "--model", "transformer:depth=3"]) == 2
    assert "keys d, heads" in capsys.readouterr().err
    assert main(["memory", "--model", "mlp:4-3", "--seq-len", "8,16,32"]) == 2
    assert "transformer: models only" in capsys.readouterr().err
