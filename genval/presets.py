"""Named sets of gate rules a config can ask for by name (`gate: {preset: parity}`), then extend or override.

`parity`: the same checkpoint through two engines (hf and vllm, or hf and an OpenAI-compatible
server) as teacher and student. Engines that agree give the same labels, the same label
probabilities and the same next tokens; what differs is numerical (kernels, dtype, batching), so the
bounds are tight. The rules read numbers a classification run with `token_fidelity` among its
metrics has (`genval validate` says so where they are missing):

- label flips: `agreement_rate` (the share of examples both engines label alike), tested at its
  interval's lower end, and McNemar's exact test on the examples only one engine gets right
  (`mcnemar_p`: are the flips one-sided?);
- label-probability distance: KL between the engines' label distributions;
- token agreement: the share of the teacher engine's output tokens whose top-1 next token the other
  engine also puts first, at its interval's lower end, and the per-token KL.

A lower end of 0.98 needs examples: with every example agreeing, a 95 % Wilson interval's lower end
n / (n + 3.84) reaches 0.98 at n = 189, so a parity eval set has at least about 200 examples.
"""

from __future__ import annotations

GATE_PRESETS: dict[str, list[str]] = {
    "parity": [
        "agreement_rate lower >= 0.98",
        "mcnemar_p >= 0.05",
        "kl_teacher_student <= 0.01",
        "token_agreement lower >= 0.98",
        "token_kl <= 0.01",
    ],
}
# What a preset's rules read, and the config that has it: (metric name, what the run needs for it).
NEEDS: dict[str, dict[str, str]] = {
    "parity": {"labels": "task 'classification' with 'labels' (flips, McNemar, label KL)",
               "token_fidelity": "'token_fidelity' in 'metrics' (token agreement and KL)"},
}
