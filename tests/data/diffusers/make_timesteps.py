#!/usr/bin/env python3
"""Regenerate the diffusers reference tables in this folder.

Written for deis (issue 14: models from the diffusers ecosystem; issue 11: named
noise levels).  It re-states, in plain Python 3 with IEEE double arithmetic, the
arithmetic that diffusers' schedulers do with numpy when `set_timesteps(N)` is
called, so that no numpy (and no diffusers, torch or network) is needed to
produce the tables.  See README.md for what every rule means and where it was
read.

    python3 make_timesteps.py            # writes the CSV files next to this script
    python3 make_timesteps.py --check    # also compares the emulation with numpy,
                                         # when numpy can be imported

Outputs (all next to this script):
    timesteps.csv         integer / float timestep sequences per scheduler, spacing,
                          steps_offset and N
    flow_sigmas.csv       SD3 and FLUX.1 flow-matching sigmas and timesteps
    training_sigmas.csv   the 1000-entry training tables (alphas_cumprod, sigma)
    karras.csv            Karras sigmas and the timesteps diffusers derives from them
    img2img.csv           where img2img pipelines start for a given strength
    ays.csv               Align Your Steps noise levels, published and interpolated

Only the Python standard library is used.  Every numpy routine that matters is
re-implemented below the way numpy computes it (numpy >= 1.20 algorithms, which
are the same in numpy 2.x).
"""

import argparse
import csv
import math
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
T_TRAIN = 1000  # num_train_timesteps of every model covered here


# ---------------------------------------------------------------------------
# numpy arithmetic, re-stated in float64
# ---------------------------------------------------------------------------

def np_linspace(start, stop, num):
    """numpy.linspace(start, stop, num) with endpoint=True, in float64.

    numpy computes step = (stop - start) / (num - 1), then y[i] = i * step + start
    (two roundings), then overwrites the last element with `stop` exactly.
    With num == 1 the result is [start]; with num == 0 it is [].
    """
    start = float(start)
    stop = float(stop)
    if num <= 0:
        return []
    div = num - 1
    delta = stop - start
    if div > 0:
        step = delta / div
        if step == 0.0:  # numpy's branch for denormal steps: y / div * delta
            ys = [(i / div) * delta + start for i in range(num)]
        else:
            ys = [i * step + start for i in range(num)]
        ys[-1] = stop
    else:
        ys = [0.0 * delta + start]
    return ys


def np_arange_float(start, stop, step):
    """numpy.arange(start, stop, step) when the step is a Python float.

    numpy sizes the result as ceil((stop - start) / step), stores start and
    start + step, then fills element i as start + i * d where
    d = (start + step) - start (not `step` itself).
    """
    start = float(start)
    length = math.ceil((stop - start) / step)
    if length <= 0:
        return []
    out = [start]
    if length > 1:
        second = start + step
        out.append(second)
        d = second - start
        for i in range(2, length):
            out.append(start + i * d)
    return out


def np_rint(x):
    """ndarray.round() with decimals=0: round half to even (Python's round does the same)."""
    return float(round(x))


def to_f32(x):
    """Round a double to the nearest float32 (what .astype(np.float32) / torch float32 do)."""
    return struct.unpack("<f", struct.pack("<f", x))[0]


def np_interp(x, xp, fp):
    """numpy.interp for increasing xp (scalar x)."""
    n = len(xp)
    if x < xp[0]:
        return fp[0]
    if x > xp[-1]:
        return fp[-1]
    if x == xp[-1]:
        return fp[-1]
    lo, hi = 0, n - 1  # find j with xp[j] <= x < xp[j+1]
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if xp[mid] <= x:
            lo = mid
        else:
            hi = mid
    j = lo
    slope = (fp[j + 1] - fp[j]) / (xp[j + 1] - xp[j])
    return slope * (x - xp[j]) + fp[j]


# ---------------------------------------------------------------------------
# set_timesteps(N) of each scheduler (default path, no custom timesteps/sigmas)
# ---------------------------------------------------------------------------

def ddim_timesteps(spacing, offset, n, T=T_TRAIN):
    """DDIMScheduler.set_timesteps (also PNDM's base list, reversed, for linspace/leading)."""
    if n > T:
        raise ValueError("DDIM refuses num_inference_steps > num_train_timesteps")
    if spacing == "linspace":
        ts = [int(np_rint(v)) for v in np_linspace(0, T - 1, n)][::-1]
    elif spacing == "leading":
        ratio = T // n
        ts = [i * ratio + offset for i in range(n)][::-1]
    elif spacing == "trailing":
        ratio = T / n
        ts = [int(np_rint(v)) - 1 for v in np_arange_float(T, 0, -ratio)]
    else:
        raise ValueError(spacing)
    return ts


def ddim_step_targets(ts, n, T=T_TRAIN):
    """The alphas_cumprod index DDIMScheduler.step lands on from each timestep.

    step() does not look at the next listed timestep: it uses t - T // N and, when
    that is negative, final_alpha_cumprod (written here as -1).
    """
    return [max(t - T // n, -1) for t in ts]


def dpm_timesteps(spacing, offset, n, T=T_TRAIN, last_timestep=None):
    """DPMSolverMultistepScheduler / DEISMultistepScheduler / UniPC set_timesteps.

    last_timestep is T - clipped_idx; with the default lambda_min_clipped = -inf it is T
    (DEIS has no clipping and always uses T).
    """
    L = T if last_timestep is None else last_timestep
    if spacing == "linspace":
        ts = [int(np_rint(v)) for v in np_linspace(0, L - 1, n + 1)][::-1][:-1]
    elif spacing == "leading":
        ratio = L // (n + 1)
        ts = [i * ratio for i in range(n + 1)][::-1][:-1]
        ts = [t + offset for t in ts]
    elif spacing == "trailing":
        ratio = T / n
        ts = [int(np_rint(v)) - 1 for v in np_arange_float(L, 0, -ratio)]
    else:
        raise ValueError(spacing)
    return ts


def pndm_timesteps(spacing, offset, n, T=T_TRAIN):
    """PNDMScheduler.set_timesteps with skip_prk_steps=True (the PLMS list SD 1.5 runs)."""
    if spacing == "linspace":
        base = [int(np_rint(v)) for v in np_linspace(0, T - 1, n)]
    elif spacing == "leading":
        ratio = T // n
        base = [i * ratio + offset for i in range(n)]
    elif spacing == "trailing":
        ratio = T / n
        base = [int(np_rint(v)) - 1 for v in np_arange_float(T, 0, -ratio)][::-1]
    else:
        raise ValueError(spacing)
    # ascending base -> [base[:-1], base[-2], base[-1]] reversed: the second-largest
    # timestep appears twice (PLMS warm-up), so the list has N + 1 entries.
    plms = (base[:-1] + base[-2:-1] + base[-1:])[::-1]
    return plms


def euler_timesteps(spacing, offset, n, T=T_TRAIN):
    """EulerDiscreteScheduler.set_timesteps: float32 timesteps (not rounded for linspace)."""
    if spacing == "linspace":
        ts = [to_f32(v) for v in np_linspace(0, T - 1, n)][::-1]
    elif spacing == "leading":
        ratio = T // n
        ts = [to_f32(float(i * ratio)) + offset for i in range(n)][::-1]
    elif spacing == "trailing":
        ratio = T / n
        ts = [to_f32(np_rint(v)) - 1.0 for v in np_arange_float(T, 0, -ratio)]
    else:
        raise ValueError(spacing)
    return ts


def ddim_inverse_timesteps(spacing, offset, n, T=T_TRAIN):
    """DDIMInverseScheduler.set_timesteps: ascending, leading or trailing only."""
    if n > T:
        raise ValueError("DDIMInverse refuses num_inference_steps > num_train_timesteps")
    if spacing == "leading":
        ratio = T // n
        ts = [i * ratio + offset for i in range(n)]
    elif spacing == "trailing":
        ratio = T / n
        ts = [int(np_rint(v)) - 1 for v in np_arange_float(T, 0, -ratio)[::-1]]
    else:
        raise ValueError("DDIMInverseScheduler has no linspace spacing")
    return ts


def ddim_inverse_step_sources(ts, n, T=T_TRAIN):
    """The alphas_cumprod index DDIMInverseScheduler.step starts from at each timestep t.

    step(t) moves the sample from min(t - T // N, T - 1) (or initial_alpha_cumprod when
    negative, written -1) to t; the network was evaluated with timestep t.
    """
    return [max(min(t - T // n, T - 1), -1) for t in ts]


# ---------------------------------------------------------------------------
# training tables
# ---------------------------------------------------------------------------

def betas_linear(b0, b1, T=T_TRAIN):
    return np_linspace(b0, b1, T)


def betas_scaled_linear(b0, b1, T=T_TRAIN):
    return [v * v for v in np_linspace(b0 ** 0.5, b1 ** 0.5, T)]


def betas_squaredcos_cap_v2(T=T_TRAIN, max_beta=0.999):
    def abar(t):
        return math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2
    return [min(1 - abar((i + 1) / T) / abar(i / T), max_beta) for i in range(T)]


def cumprod_alphas(betas):
    out, p = [], 1.0
    for b in betas:
        p *= 1.0 - b
        out.append(p)
    return out


def rescale_zero_terminal_snr(betas):
    """diffusers' rescale_zero_terminal_snr (Lin et al. 2023, Algorithm 1), in float64."""
    abar = cumprod_alphas(betas)
    s = [math.sqrt(a) for a in abar]
    s0, sT = s[0], s[-1]
    s = [(v - sT) * (s0 / (s0 - sT)) for v in s]
    ab = [v * v for v in s]
    alphas = [ab[0]] + [ab[i] / ab[i - 1] for i in range(1, len(ab))]
    return [1.0 - a for a in alphas]


def sigmas_from_abar(abar):
    return [math.sqrt((1.0 - a) / a) if a > 0 else math.inf for a in abar]


SD_BETAS = betas_scaled_linear(0.00085, 0.012)
SD_ABAR = cumprod_alphas(SD_BETAS)
SD_SIGMAS = sigmas_from_abar(SD_ABAR)
SD_LOG_SIGMAS = [math.log(s) for s in SD_SIGMAS]


def sigma_to_t(sigma, log_sigmas):
    """diffusers' _sigma_to_t: piecewise-linear interpolation of t in log sigma."""
    log_sigma = math.log(max(sigma, 1e-10))
    k = sum(1 for ls in log_sigmas if ls <= log_sigma)  # entries at or below
    low_idx = min(max(k - 1, 0), len(log_sigmas) - 2)
    high_idx = low_idx + 1
    low, high = log_sigmas[low_idx], log_sigmas[high_idx]
    w = (low - log_sigma) / (low - high)
    w = min(max(w, 0.0), 1.0)
    return (1 - w) * low_idx + w * high_idx


def karras_sigmas(sigma_min, sigma_max, n, rho=7.0):
    ramp = np_linspace(0, 1, n)
    lo, hi = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    return [(hi + r * (lo - hi)) ** rho for r in ramp]


# ---------------------------------------------------------------------------
# flow matching
# ---------------------------------------------------------------------------

def shift_sigma(s, shift):
    return shift * s / (1 + (shift - 1) * s)


def flow_default_sigmas(n, shift, T=T_TRAIN):
    """FlowMatchEulerDiscreteScheduler.set_timesteps(N) without custom sigmas and
    without dynamic shifting (SD3): the endpoints come from the *shifted* training
    table built in __init__ (float32), then the linspace is shifted again."""
    train = [to_f32(to_f32(v) / T) for v in np_linspace(1, T, T)][::-1]  # float32
    shifted = [to_f32(to_f32(shift * s) / to_f32(1 + to_f32((shift - 1) * s))) for s in train]
    sigma_max, sigma_min = shifted[0], shifted[-1]
    ts = np_linspace(sigma_max * T, sigma_min * T, n)
    return [shift_sigma(t / T, shift) for t in ts]


def flux_mu(image_seq_len, base_seq_len=256, max_seq_len=4096, base_shift=0.5, max_shift=1.15):
    m = (max_shift - base_shift) / (max_seq_len - base_seq_len)
    b = base_shift - m * base_seq_len
    return image_seq_len * m + b


def flux_sigmas(n, mu, emulate_float32=True):
    """FLUX pipelines pass sigmas = linspace(1, 1/N, N) (float64); set_timesteps casts
    custom sigmas to float32 *before* the exponential time shift
    exp(mu) / (exp(mu) + (1/s - 1)), so numpy evaluates the shift in float32 (the
    Python scalar exp(mu) is converted to float32).  emulate_float32=False gives the
    same formula in float64."""
    em = math.exp(mu)
    base = np_linspace(1.0, 1 / n, n)
    if not emulate_float32:
        return [em / (em + (1 / s - 1) ** 1.0) for s in base]
    em32 = to_f32(em)
    out = []
    for s in base:
        s32 = to_f32(s)
        d = to_f32(to_f32(1.0 / s32) - 1.0)
        out.append(to_f32(em32 / to_f32(em32 + d)))
    return out


# ---------------------------------------------------------------------------
# Align Your Steps
# ---------------------------------------------------------------------------

# Table 3 of Sabour, Fidler, Kreis, "Align Your Steps" (ICML 2024), 10 steps,
# values sigma(t_10) ... sigma(t_0).
AYS_SIGMAS = {
    "SD1.5": [14.615, 6.475, 3.861, 2.697, 1.886, 1.396, 0.963, 0.652, 0.399, 0.152, 0.029],
    "SDXL": [14.615, 6.315, 3.771, 2.181, 1.342, 0.862, 0.555, 0.380, 0.234, 0.113, 0.029],
    "DeepFloyd-IF-stage1": [160.41, 8.081, 3.315, 1.885, 1.207, 0.785, 0.553, 0.293, 0.186, 0.030, 0.006],
    "SVD": [700.00, 54.5, 15.886, 7.977, 4.248, 1.789, 0.981, 0.403, 0.173, 0.034, 0.002],
}
# The integer timesteps of the project's quick-start guide (also diffusers' AysSchedules);
# the final 0 is the last noise level sigma(0) of the training table.
AYS_TIMESTEPS = {
    "SD1.5": [999, 850, 736, 645, 545, 455, 343, 233, 124, 24, 0],
    "SDXL": [999, 845, 730, 587, 443, 310, 193, 116, 53, 13, 0],
}


def loglinear_interp(levels, num):
    """The AYS authors' procedure: interpolate log(sigma) linearly over an evenly
    spaced index in [0, 1] (done on the increasing, reversed list)."""
    xs = np_linspace(0, 1, len(levels))
    ys = [math.log(v) for v in levels[::-1]]
    new = [math.exp(np_interp(x, xs, ys)) for x in np_linspace(0, 1, num)]
    return new[::-1]


# ---------------------------------------------------------------------------
# output
# ---------------------------------------------------------------------------

SPACINGS = ["linspace", "leading", "trailing"]
OFFSETS = [0, 1]
STEP_COUNTS = [1, 3, 7, 10, 20, 50, 999, 1000]


def fmt_f(x):
    return repr(float(x))


def fmt_list(vals, floats=False):
    return " ".join(fmt_f(v) if floats else str(v) for v in vals)


def has_duplicates(vals):
    return len(set(vals)) != len(vals)


def out_of_range(vals, T=T_TRAIN):
    return any(v < 0 or v > T - 1 for v in vals)


def timestep_rows():
    rows = []
    for sched in ["DDIM", "DPMSolverMultistep", "DEISMultistep", "PNDM", "EulerDiscrete", "DDIMInverse"]:
        for spacing in SPACINGS:
            if sched == "DDIMInverse" and spacing == "linspace":
                continue
            for offset in OFFSETS:
                for n in STEP_COUNTS:
                    partner = ""
                    floats = False
                    if sched == "DDIM":
                        ts = ddim_timesteps(spacing, offset, n)
                        partner = fmt_list(ddim_step_targets(ts, n))
                    elif sched in ("DPMSolverMultistep", "DEISMultistep"):
                        ts = dpm_timesteps(spacing, offset, n)
                    elif sched == "PNDM":
                        ts = pndm_timesteps(spacing, offset, n)
                    elif sched == "EulerDiscrete":
                        ts = euler_timesteps(spacing, offset, n)
                        floats = True
                    else:
                        ts = ddim_inverse_timesteps(spacing, offset, n)
                        partner = fmt_list(ddim_inverse_step_sources(ts, n))
                    rows.append({
                        "scheduler": sched,
                        "timestep_spacing": spacing,
                        "steps_offset": offset,
                        "num_train_timesteps": T_TRAIN,
                        "num_inference_steps": n,
                        "count": len(ts),
                        "duplicates": int(has_duplicates(ts)),
                        "out_of_range": int(out_of_range(ts)),
                        "timesteps": fmt_list(ts, floats),
                        "step_partner": partner,
                    })
    return rows


def write_csv(name, fieldnames, rows):
    path = os.path.join(HERE, name)
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=fieldnames, lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow(r)
    return path


def flow_rows():
    rows = []
    cases = [("SD3-medium", None, 3.0)]
    for res, seq in ((1024, 4096), (768, 2304), (512, 1024)):
        cases.append(("FLUX.1-dev %dx%d" % (res, res), seq, None))
    for model, seq, shift in cases:
        for n in [1, 4, 10, 20, 28, 50]:
            if seq is None:
                sig = flow_default_sigmas(n, shift)
                mu = ""
            else:
                mu_v = flux_mu(seq)
                sig = flux_sigmas(n, mu_v, emulate_float32=False)
                mu = fmt_f(mu_v)
            sig32 = [to_f32(s) for s in sig] if seq is None else flux_sigmas(n, mu_v)
            ts32 = [to_f32(s * T_TRAIN) for s in sig32]  # float32 product, one rounding
            rows.append({
                "model": model,
                "image_seq_len": "" if seq is None else seq,
                "shift": "" if shift is None else shift,
                "mu": mu,
                "num_inference_steps": n,
                "sigmas_f64": fmt_list(sig, True),
                "sigmas_f32": fmt_list(sig32, True),
                "timesteps_f32": fmt_list(ts32, True),
            })
    return rows


def training_rows():
    lin = cumprod_alphas(betas_linear(0.0001, 0.02))
    cos = cumprod_alphas(betas_squaredcos_cap_v2())
    zs = cumprod_alphas(rescale_zero_terminal_snr(SD_BETAS))
    rows = []
    for t in range(T_TRAIN):
        rows.append({
            "t": t,
            "alphabar_linear": fmt_f(lin[t]),
            "sigma_linear": fmt_f(sigmas_from_abar([lin[t]])[0]),
            "alphabar_scaled_linear": fmt_f(SD_ABAR[t]),
            "sigma_scaled_linear": fmt_f(SD_SIGMAS[t]),
            "alphabar_squaredcos_cap_v2": fmt_f(cos[t]),
            "sigma_squaredcos_cap_v2": fmt_f(sigmas_from_abar([cos[t]])[0]),
            "alphabar_scaled_linear_zsnr": fmt_f(zs[t]),
            "sigma_scaled_linear_zsnr": fmt_f(sigmas_from_abar([zs[t]])[0]) if zs[t] > 0 else "inf",
        })
    return rows


def karras_rows():
    rows = []
    for n in [10, 20, 50]:
        # DPMSolverMultistep / DEIS / UniPC: the bounds are the whole training table.
        sig = karras_sigmas(SD_SIGMAS[0], SD_SIGMAS[-1], n)
        tf = [sigma_to_t(s, SD_LOG_SIGMAS) for s in sig]
        rows.append({
            "scheduler": "DPMSolverMultistep", "timestep_spacing": "any", "steps_offset": "any",
            "num_inference_steps": n, "sigma_max": fmt_f(SD_SIGMAS[-1]), "sigma_min": fmt_f(SD_SIGMAS[0]),
            "sigmas": fmt_list(sig, True), "timesteps_fractional": fmt_list(tf, True),
            "timesteps_used": fmt_list([int(np_rint(t)) for t in tf]),
        })
        # EulerDiscrete: the bounds are the sigmas interpolated at the spaced timesteps.
        for spacing, offset in (("leading", 1), ("linspace", 0), ("trailing", 0)):
            ts = euler_timesteps(spacing, offset, n)
            interp = [np_interp(t, list(range(T_TRAIN)), SD_SIGMAS) for t in ts]
            sig = karras_sigmas(interp[-1], interp[0], n)
            tf = [sigma_to_t(s, SD_LOG_SIGMAS) for s in sig]
            rows.append({
                "scheduler": "EulerDiscrete", "timestep_spacing": spacing, "steps_offset": offset,
                "num_inference_steps": n, "sigma_max": fmt_f(interp[0]), "sigma_min": fmt_f(interp[-1]),
                "sigmas": fmt_list(sig, True), "timesteps_fractional": fmt_list(tf, True),
                "timesteps_used": fmt_list([to_f32(t) for t in tf], True),
            })
    return rows


def ays_rows():
    rows = []
    for model, levels in AYS_SIGMAS.items():
        ts = AYS_TIMESTEPS.get(model)
        for i, s in enumerate(levels):
            rows.append({
                "model": model, "kind": "published", "num_levels": len(levels), "index": i,
                "sigma": fmt_f(s),
                "timestep": "" if ts is None else ts[i],
                "sigma_at_timestep": "" if ts is None else fmt_f(SD_SIGMAS[ts[i]]),
            })
        for steps in [5, 8, 12, 15, 20, 25, 30, 40, 50]:
            interp = loglinear_interp(levels, steps + 1)
            for i, s in enumerate(interp):
                rows.append({
                    "model": model, "kind": "loglinear_interp", "num_levels": steps + 1, "index": i,
                    "sigma": fmt_f(s), "timestep": "", "sigma_at_timestep": "",
                })
    return rows


def img2img_start(n, strength, style):
    """(init_timestep, t_start, steps_run) of the img2img pipelines' get_timesteps.

    style "sd": StableDiffusion(XL)Img2ImgPipeline: init = min(int(N * strength), N),
    t_start = max(N - init, 0).  style "flow": SD3 / FLUX img2img: init =
    min(N * strength, N) as a float, t_start = int(max(N - init, 0)).
    """
    if style == "sd":
        init = min(int(n * strength), n)
        t_start = max(n - init, 0)
    else:
        init = min(n * strength, n)
        t_start = int(max(n - init, 0))
    return init, t_start, n - t_start


def img2img_rows():
    rows = []
    for n in [10, 20, 28, 50]:
        for strength in [0.1, 0.25, 0.29, 0.3, 0.5, 0.57, 0.6, 0.75, 0.8, 0.99, 1.0]:
            init, t0, run = img2img_start(n, strength, "sd")
            finit, ft0, frun = img2img_start(n, strength, "flow")
            ddim = ddim_timesteps("leading", 1, n)[t0:]
            euler = euler_timesteps("leading", 1, n)[t0:]
            dpm = dpm_timesteps("linspace", 0, n)[t0:]
            sd3 = [to_f32(v) for v in flow_default_sigmas(n, 3.0)][ft0:]
            rows.append({
                "num_inference_steps": n, "strength": strength,
                "sd_init_timestep": init, "sd_t_start": t0, "sd_steps_run": run,
                "first_timestep_ddim_leading_offset1": ddim[0] if ddim else "",
                "first_timestep_euler_leading_offset1": fmt_f(euler[0]) if euler else "",
                "first_timestep_dpm_linspace": dpm[0] if dpm else "",
                "flow_init_timestep": fmt_f(finit), "flow_t_start": ft0, "flow_steps_run": frun,
                "first_sigma_sd3": fmt_f(sd3[0]) if sd3 else "",
            })
    return rows


def check_against_numpy():
    """Compare the emulation with numpy itself, if it is installed."""
    try:
        import numpy as np
    except ImportError:
        print("numpy not importable: --check skipped")
        return True
    ok = True

    def same(a, b, what, rel=0.0):
        """Exact equality, or within `rel` (relative) where log/exp are involved:
        numpy's vectorised log/exp and the C library's may differ in the last bit."""
        nonlocal ok
        a, b = list(a), list(b)
        if len(a) != len(b) or any(abs(x - y) > rel * abs(y) for x, y in zip(a, b)):
            ok = False
            print("MISMATCH", what, a[:8], b[:8])

    T = T_TRAIN
    for n in range(1, T + 1):
        # DDIM
        same(ddim_timesteps("linspace", 0, n),
             np.linspace(0, T - 1, n).round()[::-1].astype(np.int64).tolist(), ("ddim lin", n))
        same(ddim_timesteps("leading", 1, n),
             ((np.arange(0, n) * (T // n)).round()[::-1].astype(np.int64) + 1).tolist(), ("ddim lead", n))
        same(ddim_timesteps("trailing", 0, n),
             (np.round(np.arange(T, 0, -T / n)).astype(np.int64) - 1).tolist(), ("ddim trail", n))
        # DPM / DEIS
        same(dpm_timesteps("linspace", 0, n),
             np.linspace(0, T - 1, n + 1).round()[::-1][:-1].astype(np.int64).tolist(), ("dpm lin", n))
        same(dpm_timesteps("leading", 1, n),
             ((np.arange(0, n + 1) * (T // (n + 1))).round()[::-1][:-1].astype(np.int64) + 1).tolist(),
             ("dpm lead", n))
        same(dpm_timesteps("trailing", 0, n),
             (np.arange(T, 0, -T / n).round().astype(np.int64) - 1).tolist(), ("dpm trail", n))
        # Euler (float32)
        same(euler_timesteps("linspace", 0, n),
             np.linspace(0, T - 1, n, dtype=np.float32)[::-1].tolist(), ("euler lin", n))
        e_tr = np.arange(T, 0, -T / n).round().astype(np.float32)
        e_tr -= 1
        same(euler_timesteps("trailing", 0, n), e_tr.tolist(), ("euler trail", n))
    # interp, linspace of floats, training table
    xs = np.linspace(0, 1, 11)
    ys = np.log(np.array(AYS_SIGMAS["SD1.5"][::-1]))
    for num in (5, 21, 31, 51):
        ref = np.exp(np.interp(np.linspace(0, 1, num), xs, ys))[::-1].tolist()
        same(loglinear_interp(AYS_SIGMAS["SD1.5"], num), ref, ("ays interp", num), rel=1e-15)
    ref_b = (np.linspace(0.00085 ** 0.5, 0.012 ** 0.5, T) ** 2).tolist()
    same(SD_BETAS, ref_b, "scaled_linear betas")
    for n in (1, 4, 10, 28, 50):
        ref = np.array(np.linspace(1.0, 1 / n, n)).astype(np.float32)
        mu = flux_mu(4096)
        ref = (math.exp(mu) / (math.exp(mu) + (1 / ref - 1) ** 1.0)).astype(np.float32).tolist()
        same(flux_sigmas(n, mu), ref, ("flux", n), rel=1e-7)
    print("numpy %s check: %s" % (np.__version__, "all equal" if ok else "DIFFERENCES"))
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="compare with numpy when importable")
    args = ap.parse_args()

    write_csv("timesteps.csv",
              ["scheduler", "timestep_spacing", "steps_offset", "num_train_timesteps",
               "num_inference_steps", "count", "duplicates", "out_of_range", "timesteps",
               "step_partner"],
              timestep_rows())
    write_csv("flow_sigmas.csv",
              ["model", "image_seq_len", "shift", "mu", "num_inference_steps",
               "sigmas_f64", "sigmas_f32", "timesteps_f32"],
              flow_rows())
    write_csv("training_sigmas.csv",
              ["t", "alphabar_linear", "sigma_linear", "alphabar_scaled_linear",
               "sigma_scaled_linear", "alphabar_squaredcos_cap_v2", "sigma_squaredcos_cap_v2",
               "alphabar_scaled_linear_zsnr", "sigma_scaled_linear_zsnr"],
              training_rows())
    write_csv("karras.csv",
              ["scheduler", "timestep_spacing", "steps_offset", "num_inference_steps",
               "sigma_max", "sigma_min", "sigmas", "timesteps_fractional", "timesteps_used"],
              karras_rows())
    write_csv("img2img.csv",
              ["num_inference_steps", "strength", "sd_init_timestep", "sd_t_start", "sd_steps_run",
               "first_timestep_ddim_leading_offset1", "first_timestep_euler_leading_offset1",
               "first_timestep_dpm_linspace", "flow_init_timestep", "flow_t_start",
               "flow_steps_run", "first_sigma_sd3"],
              img2img_rows())
    write_csv("ays.csv",
              ["model", "kind", "num_levels", "index", "sigma", "timestep", "sigma_at_timestep"],
              ays_rows())
    if args.check and not check_against_numpy():
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
