#!/usr/bin/env python3
"""Golden losses and gradients for the GSPO and CISPO policy losses (grpo/loss.h), float64.

Written from the papers' formulas, independently of grpo/loss.cc:
  GSPO (arXiv 2507.18071): sequence form s_i = exp(mean_t (logp - old)), J_i = min(s_i A, clip(s_i) A),
       per-token loss = -J_i on every unmasked token of row i (+ beta * k3 KL), gradient by autograd
       through s_i (the C++ uses the GSPO-token form; both must give the same gradient).
  CISPO (arXiv 2506.13585): J = sg(clip(rho)) * A * logp per token.
Each case is also checked against central differences here (h = 1e-6) before it is written.
Usage: python3 tests/reference/gen_loss_variants.py [out.json]   (default tests/data/grpo/loss_variants.json)
"""
import json
import math
import os
import sys

try:
    import torch
except ImportError:
    print("gen_loss_variants: skipped, python torch is not installed")
    sys.exit(0)

torch.set_default_dtype(torch.float64)


def k3(ref, logp, valid):
    d = torch.where(valid, ref - logp, torch.zeros_like(logp))
    return torch.exp(d) - d - 1.0


def aggregate(per_token, m, agg, L):
    B = per_token.shape[0]
    n = m.sum(1)
    if agg == "grpo":
        return (per_token.sum(1) / n.clamp(min=1)).sum() / B
    if agg == "token_mean":
        return per_token.sum() / max(1.0, float(m.sum()))
    if agg == "dr_grpo":
        return per_token.sum() / (B * L)
    if agg == "seq_mean_nonempty":
        ne = int((n > 0).sum())
        return (per_token.sum(1) / n.clamp(min=1)).sum() / max(1, ne)
    raise ValueError(agg)


def reference(case, logp_in):
    o = case["options"]
    inp = case["inputs"]
    logp = logp_in
    old = torch.tensor(inp["old_logp"])
    ref = torch.tensor(inp["ref_logp"])
    A = torch.tensor(inp["advantages"])
    mask = torch.tensor(inp["mask"]) > 0
    m = mask.double()
    lo, hi, beta, c = 1 - o["eps_low"], 1 + o["eps_high"], o["beta"], o["dual_clip"]
    B, T = logp.shape
    zero = torch.zeros_like(logp)
    if o["policy_loss"] == "gspo":
        n = m.sum(1)
        s = torch.exp((torch.where(mask, logp - old, zero)).sum(1) / n.clamp(min=1))  # [B]
        J = torch.minimum(s * A, s.clamp(lo, hi) * A)
        if c > 0:
            J = torch.where(A < 0, torch.maximum(J, c * A), J)
        pg = (-J).unsqueeze(1).expand(B, T)
        ratio = s.detach().unsqueeze(1).expand(B, T)
        r_seq = s.detach()
        low = ((r_seq < lo) & (A < 0)).unsqueeze(1).expand(B, T)
        high = ((r_seq > hi) & (A > 0)).unsqueeze(1).expand(B, T)
    else:
        rho = torch.exp(torch.where(mask, logp - old, zero))
        w = rho.clamp(lo, hi).detach()
        pg = -(w * A.unsqueeze(1) * torch.where(mask, logp, zero))
        ratio = rho.detach()
        nz = (A != 0).unsqueeze(1)
        low = (ratio < lo) & nz
        high = (ratio > hi) & nz
    per_token = (pg + beta * k3(ref, logp, mask)) * m
    loss = aggregate(per_token, m, o["aggregation"], o["max_completion_length"])
    N = max(1.0, float(m.sum()))
    stats = {
        "num_tokens": float(m.sum()),
        "clip_low_frac": float((low & mask).sum()) / N,
        "clip_high_frac": float((high & mask).sum()) / N,
        "kl_mean": float((k3(ref, logp, mask).detach() * m).sum()) / N,
    }
    return loss, per_token, ratio * m, stats


def make_case(name, gen, B, T, lengths, opts, spread=0.3, adv=None):
    while True:
        old = -torch.rand(B, T, generator=gen) * 3 - 0.05
        logp = old + (torch.rand(B, T, generator=gen) * 2 - 1) * spread
        ref = old + (torch.rand(B, T, generator=gen) * 2 - 1) * 0.3
        mask = torch.zeros(B, T)
        for i, n in enumerate(lengths):
            mask[i, :n] = 1
        A = adv if adv is not None else torch.randn(B, generator=gen)
        # Junk at masked positions must not matter.
        logp = torch.where(mask > 0, logp, torch.full_like(logp, -40.0))
        lo, hi = 1 - opts["eps_low"], 1 + opts["eps_high"]
        if opts["policy_loss"] == "gspo":
            n = mask.sum(1).clamp(min=1)
            r = torch.exp(((logp - old) * mask).sum(1) / n)
            rs = r[mask.sum(1) > 0]
        else:
            rs = torch.exp(logp - old)[mask > 0]
        bounds = [lo, hi] + ([opts["dual_clip"]] if opts["dual_clip"] > 0 else [])
        # No ratio within 1e-3 (relative to the clip width) of a kink: float32 and finite differences agree.
        margin = min(1e-3, 0.1 * opts["eps_high"], 0.1 * max(opts["eps_low"], 1e-9))
        if all(float((rs - b).abs().min()) > margin for b in bounds):
            break
    return {"name": name, "options": opts,
            "inputs": {"logp": logp.tolist(), "old_logp": old.tolist(), "ref_logp": ref.tolist(),
                       "advantages": A.tolist(), "mask": mask.tolist()}}


def opts(policy_loss, agg="grpo", eps_low=0.2, eps_high=0.2, beta=0.0, dual_clip=0.0, L=0):
    return {"policy_loss": policy_loss, "aggregation": agg, "eps_low": eps_low, "eps_high": eps_high,
            "beta": beta, "dual_clip": dual_clip, "max_completion_length": L}


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "data", "grpo",
                                                             "loss_variants.json")
    gen = torch.Generator().manual_seed(20250718)
    cases = [
        make_case("gspo_paper_eps_grpo", gen, 4, 7, [7, 5, 3, 6], opts("gspo", eps_low=3e-4, eps_high=4e-4), 0.002),
        make_case("gspo_eps02_token_mean", gen, 6, 8, [8, 1, 5, 8, 2, 6], opts("gspo", "token_mean"), 0.6),
        make_case("gspo_beta_seq_mean_nonempty_empty_row", gen, 4, 6, [6, 0, 4, 2],
                  opts("gspo", "seq_mean_nonempty", beta=0.04), 0.5),
        make_case("gspo_dr_grpo_L_gt_T", gen, 4, 5, [5, 3, 4, 1], opts("gspo", "dr_grpo", L=12), 0.5),
        make_case("gspo_dual_clip", gen, 4, 4, [4, 4, 3, 2], opts("gspo", dual_clip=1.5, eps_high=0.28), 1.5,
                  adv=torch.tensor([-1.0, -0.7, 0.8, -0.4])),
        make_case("cispo_no_floor_token_mean", gen, 6, 8, [8, 7, 2, 8, 5, 3],
                  opts("cispo", "token_mean", eps_low=1.0, eps_high=0.28), 0.6),
        make_case("cispo_two_sided_grpo_beta", gen, 4, 6, [6, 4, 1, 5], opts("cispo", beta=0.04), 0.5),
        make_case("cispo_zero_advantage_row_empty_row", gen, 4, 5, [5, 0, 3, 4], opts("cispo", "token_mean"), 0.5,
                  adv=torch.tensor([0.0, 0.9, -1.1, 0.5])),
        make_case("cispo_dr_grpo", gen, 3, 6, [6, 2, 4], opts("cispo", "dr_grpo", eps_low=1.0, eps_high=4.0, L=8), 1.2),
    ]
    worst_fd = 0.0
    for case in cases:
        logp = torch.tensor(case["inputs"]["logp"]).requires_grad_(True)
        loss, per_token, ratio, stats = reference(case, logp)
        loss.backward()
        grad = logp.grad
        mask = torch.tensor(case["inputs"]["mask"]) > 0
        h = 1e-6
        base = torch.tensor(case["inputs"]["logp"])
        for i in range(base.shape[0]):
            for t in range(base.shape[1]):
                if not mask[i, t]:
                    assert grad[i, t] == 0, case["name"]
                    continue
                p, q = base.clone(), base.clone()
                p[i, t] += h
                q[i, t] -= h
                if case["options"]["policy_loss"] == "cispo":
                    # The weight is a constant in CISPO's gradient: difference only the log-prob factor.
                    fd = None
                else:
                    fd = (float(reference(case, p)[0]) - float(reference(case, q)[0])) / (2 * h)
                if fd is not None:
                    worst_fd = max(worst_fd, abs(fd - float(grad[i, t])))
                    assert abs(fd - float(grad[i, t])) < 1e-7 * max(1, abs(fd)), (case["name"], i, t, fd, grad[i, t])
        if case["options"]["policy_loss"] == "cispo":  # gradient by hand: -sg(w) A / denominators
            o = case["options"]
            m = mask.double()
            rho = torch.exp(torch.where(mask, base - torch.tensor(case["inputs"]["old_logp"]), torch.zeros_like(base)))
            w = rho.clamp(1 - o["eps_low"], 1 + o["eps_high"])
            A = torch.tensor(case["inputs"]["advantages"]).unsqueeze(1)
            ref = torch.tensor(case["inputs"]["ref_logp"])
            d = torch.where(mask, ref - base, torch.zeros_like(base))
            dl = (-w * A + o["beta"] * (1 - torch.exp(d))) * m
            B, n = base.shape[0], m.sum(1, keepdim=True)
            agg = o["aggregation"]
            if agg == "grpo":
                wgt = 1 / (B * n.clamp(min=1))
            elif agg == "token_mean":
                wgt = 1 / max(1.0, float(m.sum()))
            else:
                wgt = 1.0 / (B * o["max_completion_length"])
            hand = dl * wgt
            worst_fd = max(worst_fd, float((hand - grad).abs().max()))
            assert float((hand - grad).abs().max()) < 1e-12, case["name"]
        case["expected"] = {"loss": float(loss.detach()), "per_token_loss": per_token.detach().tolist(),
                            "ratio": ratio.tolist(), "grad_logp": grad.tolist(), "stats": stats}
    doc = {"format": "r1kit-grpo-loss-variants", "version": 1,
           "generator": "tests/reference/gen_loss_variants.py (PyTorch %s, float64)" % torch.__version__.split("+")[0],
           "tolerance": {"float64": 1e-9, "float32": 1e-5, "rule": "|got - want| <= tol * max(1, |want|)"},
           "cases": cases}
    tmp = out + ".tmp"
    with open(tmp, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    os.replace(tmp, out)
    print("wrote %d cases to %s (gradient vs central differences / hand formula: max |diff| %.2e)"
          % (len(cases), out, worst_fd))


if __name__ == "__main__":
    main()
