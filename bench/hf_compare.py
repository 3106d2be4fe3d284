#!/usr/bin/env python3
"""bench/gpu.sh's transformers comparison, second half: how far our CPU reference
(src/reference/reference_model.ts) is from Hugging Face transformers on the tiny fixtures.

bench/hf_fixtures.ts writes each fixture as a Hugging Face folder (config.json +
model.safetensors, f32) and our reference's last-position logits and greedy ids to
reference.json; this script loads each folder with transformers (f32, eager attention, on the
CPU: exact enough and the fixtures are tiny), runs the same prompt and prints per fixture the
largest logit difference (absolute and relative to the largest |logit|), whether the argmax
agrees and where the greedy ids first differ. Results also go to hf_compare.json beside
reference.json.

    python3 bench/hf_compare.py [.cache/hf-compare/reference.json]

Needs torch and transformers; without them it says so and exits 0 (the step is optional).
"""
import json
import os
import sys


def main() -> int:
    path = sys.argv[1] if len(sys.argv) > 1 else ".cache/hf-compare/reference.json"
    try:
        import torch
        import transformers
        from transformers import AutoModelForCausalLM
    except ImportError as e:  # the step is optional: say why it did not run
        print(f"hf_compare: skipped: {e} (needs python3 with torch and transformers)")
        return 0
    with open(path) as f:
        ref = json.load(f)
    print(f"hf_compare: transformers {transformers.__version__}, torch {torch.__version__}; {len(ref['fixtures'])} fixtures from {path}")
    results = []
    for fx in ref["fixtures"]:
        name, prompt = fx["name"], fx["prompt"]
        row = {"name": name, "model_type": fx["model_type"]}
        try:
            model, info = AutoModelForCausalLM.from_pretrained(
                fx["dir"], torch_dtype=torch.float32, attn_implementation="eager", output_loading_info=True
            )
            model.eval()
            tied = bool(getattr(model.config, "tie_word_embeddings", False) or getattr(getattr(model.config, "text_config", None), "tie_word_embeddings", False))
            missing = [k for k in info.get("missing_keys", []) if not (tied and k.endswith("lm_head.weight"))]
            if missing:
                # transformers would fill these with random values: the comparison would mean nothing.
                raise RuntimeError(f"transformers expects tensors the fixture lacks: {missing[:4]}{' ...' if len(missing) > 4 else ''}")
            row["unexpected_keys"] = len(info.get("unexpected_keys", []))
            with torch.no_grad():
                ids = torch.tensor([prompt])
                logits = model(ids).logits[0, -1].double()
                ours = torch.tensor(fx["logits"], dtype=torch.float64)
                if ours.shape != logits.shape:
                    raise RuntimeError(f"vocabulary differs: ours {tuple(ours.shape)}, transformers {tuple(logits.shape)}")
                diff = (logits - ours).abs().max().item()
                scale = logits.abs().max().item()
                greedy, seq = [], list(prompt)
                for _ in range(len(fx["greedy"])):
                    nxt = int(model(torch.tensor([seq])).logits[0, -1].argmax())
                    greedy.append(nxt)
                    seq.append(nxt)
            first_diff = next((i for i, (a, b) in enumerate(zip(greedy, fx["greedy"])) if a != b), None)
            row.update(
                max_abs_logit_diff=diff,
                max_rel_logit_diff=diff / max(scale, 1e-12),
                argmax_agrees=int(logits.argmax()) == int(ours.argmax()),
                greedy_equal=first_diff is None,
                greedy_first_diff=first_diff,
                greedy_transformers=greedy,
                greedy_ours=fx["greedy"],
            )
            print(
                f"{name:16s} {fx['model_type']:12s} max |logit diff| {diff:.3g} ({diff / max(scale, 1e-12):.2e} of max |logit|), "
                f"argmax {'agrees' if row['argmax_agrees'] else 'DIFFERS'}, greedy {len(greedy)} ids "
                + ("equal" if first_diff is None else f"differ from step {first_diff}: ours {fx['greedy']} vs transformers {greedy}")
            )
        except Exception as e:  # one fixture transformers cannot run must not hide the others
            row["error"] = f"{type(e).__name__}: {e}"[:400]
            print(f"{name:16s} {fx['model_type']:12s} not compared: {row['error']}")
        results.append(row)
    out = os.path.join(os.path.dirname(path), "hf_compare.json")
    with open(out, "w") as f:
        json.dump({"transformers": transformers.__version__, "torch": torch.__version__, "results": results}, f, indent=1)
    print(f"hf_compare: results in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
