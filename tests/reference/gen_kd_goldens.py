#!/usr/bin/env python3
"""Golden values for r1kit's knowledge-distillation divergences (distill/kd_loss.h).

An independent float64 reference written directly from the definitions (probabilities, not the
log-space tricks of the C++ code), with gradients from torch.autograd:

  p_S = softmax(z_S / T), p_T = softmax(z_T / T)
  forward_kl = sum_v p_T (log p_T - log p_S)                         KL(teacher || student)
  reverse_kl = sum_v p_S (log p_S - log p_T)                         KL(student || teacher)
  jsd(beta)  = beta KL(p_T || M) + (1 - beta) KL(p_S || M),  M = beta p_T + (1 - beta) p_S
               (GKD, Agarwal et al. 2024; beta = 0 / 1 mean forward / reverse KL, as in TRL)
  top_k > 0: both distributions are restricted to the teacher's k largest logits and renormalised.

The loss of a case is the mean over the unmasked rows; grad is d loss / d student_logits.

Usage: python3 tests/reference/gen_kd_goldens.py > tests/data/distill/kd_goldens.json
"""
import json
import sys

try:
    import torch
except ImportError:
    sys.exit("gen_kd_goldens.py needs PyTorch (pip install torch)")

torch.manual_seed(20250611)
N, V = 7, 13


def divergence(zs, zt, loss, beta, temperature, top_k):
    if top_k > 0:
        idx = torch.topk(zt, top_k, dim=-1).indices
        zs = torch.gather(zs, -1, idx)
        zt = torch.gather(zt, -1, idx)
    ps = torch.softmax(zs / temperature, dim=-1)
    pt = torch.softmax(zt / temperature, dim=-1)

    def kl(p, q):  # rows of KL(p || q)
        return (p * (torch.log(p) - torch.log(q))).sum(-1)

    if loss == "forward_kl" or (loss == "jsd" and beta == 0):
        return kl(pt, ps)
    if loss == "reverse_kl" or (loss == "jsd" and beta == 1):
        return kl(ps, pt)
    m = beta * pt + (1 - beta) * ps
    return beta * kl(pt, m) + (1 - beta) * kl(ps, m)


def main():
    student = torch.randn(N, V, dtype=torch.float64) * 2.0
    teacher = torch.randn(N, V, dtype=torch.float64) * 2.0
    teacher[3] = student[3]  # one row where teacher == student: every divergence is 0 there
    mask = [1, 1, 0, 1, 1, 1, 0]
    cases = []
    for loss, beta in [("forward_kl", 0.5), ("reverse_kl", 0.5), ("jsd", 0.5), ("jsd", 0.1), ("jsd", 0.9),
                       ("jsd", 0.0), ("jsd", 1.0)]:
        for temperature in [1.0, 2.0, 0.7]:
            for top_k in [0, 5]:
                zs = student.clone().requires_grad_(True)
                rows = divergence(zs, teacher, loss, beta, temperature, top_k)
                m = torch.tensor(mask, dtype=torch.float64)
                value = (rows * m).sum() / m.sum()
                value.backward()
                cases.append({
                    "loss": loss, "beta": beta, "temperature": temperature, "top_k": top_k,
                    "rows": rows.detach().tolist(), "value": value.item(), "grad": zs.grad.tolist(),
                })
    out = {
        "magic": "r1kit-kd-goldens", "version": 1,
        "generator": "tests/reference/gen_kd_goldens.py (PyTorch %s, float64)" % torch.__version__,
        "student_logits": student.tolist(), "teacher_logits": teacher.tolist(), "mask": mask, "cases": cases,
    }
    json.dump(out, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
