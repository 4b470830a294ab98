"""`gradflow memory --model transformer:...`: the sweep over sequence length, in process."""
import json
import sys

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


def test_sequence_sweep_plot_is_written_or_names_the_extra(tmp_path, capsys, monkeypatch):
    png = tmp_path / "memory.png"
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        pass
    else:
        assert main(["memory", *SPEC, "--budget", "8MiB", "--plot", str(png)]) == 0
        assert f"wrote {png}" in capsys.readouterr().out
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
        png.unlink()
    monkeypatch.setitem(sys.modules, "matplotlib", None)   # import matplotlib now fails
    assert main(["memory", *SPEC, "--plot", str(png)]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "pip install 'gradflow[plot]'" in captured.err and not png.exists()


def test_a_transformer_checkpoint_is_swept_up_to_its_length(tmp_path, capsys):
    import gradflow as gf
    from gradflow.checkpoint_io import save_checkpoint
    from gradflow.models import build
    from gradflow.models.transformer import load_data

    path = tmp_path / "reverse.npz"
    model = build("transformer", dataset=load_data("reverse"))
    save_checkpoint(path, model, gf.optim.SGD(model.parameters(), lr=0.1), epoch=1,
                    config={"model": "transformer", "task": "reverse"})
    out_json = tmp_path / "m.json"
    assert main(["memory", "--model", str(path), "--batch-sizes", "2,4", "--device", "cpu", "--no-progress",
                 "--json", str(out_json)]) == 0
    out = capsys.readouterr().out
    assert f"TransformerTagger from {path} (task reverse)" in out and "optimizer sgd" in out
    data = json.loads(out_json.read_text())
    assert data["seq_lens"] == [2, 5, 7, 10]   # up to the model's max_len, the task's length
    assert all(row["retained"] > 0 for row in data["rows"])
    assert main(["memory", "--model", str(path), "--seq-len", "4,8,16", "--no-progress"]) == 2
    assert "max_len 10" in capsys.readouterr().err
