// The presets (docs/presets.md): dpmpp_2m, dpmpp_3m, uni_pc, uni_pc_bh2, deis, ipndm, euler and
// heun. Each multistep preset is compared with the published update written here again, in the
// published variables and the published codes' structure (lists of past model outputs and
// times, lambda = log alpha - log sigma), without the library's coefficient code: one step of
// every order, and whole runs on a Gaussian mixture (VP-linear with 5, 8, 12 and 16 steps, EDM
// down to sigma = 0, flow matching from pure noise for the data-prediction presets).
#include <Eigen/Core>
#include <algorithm>
#include <array>
#include <cmath>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "catch.hpp"
#include "deis/deis.hpp"
#include "deis/research/gmm.hpp"
#include "support.hpp"

namespace presets_test {

using mat = Eigen::MatrixXd;
// A model: the prediction (x0 or eps) at x and t.
using model_fn = std::function<mat(const mat&, double)>;

using deis_test::refusal;

bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// max |a - b| / max |b|.
double rel(const mat& a, const mat& b) { return (a - b).cwiseAbs().maxCoeff() / b.cwiseAbs().maxCoeff(); }

deis::gaussian_mixture mixture() {
    Eigen::VectorXd w(3);
    w << 0.5, 0.3, 0.2;
    mat mu(2, 3), s(2, 3);
    mu << -1.5, 1.0, 0.3, 0.5, -0.5, 1.8;
    s << 0.4, 0.3, 0.6, 0.5, 0.2, 0.3;
    return deis::gaussian_mixture(w, mu, s);
}

mat noise() {
    mat x(2, 6);
    x << 0.3, -1.2, 0.8, 1.9, -0.4, 0.05, 1.1, 0.2, -0.7, -1.6, 0.9, 0.6;
    return x;
}

template <class Schedule>
double lambda_of(const Schedule& s, double t) {
    return std::log(s.alpha(t)) - std::log(s.sigma(t));
}

// The exact x0 (data) or eps of the mixture as a model of the references.
template <class Schedule>
model_fn mixture_model(const Schedule& s, bool data) {
    const deis::gaussian_mixture mix = mixture();
    return [mix, s, data](const mat& x, double t) {
        deis::state<double> out;
        if (data)
            mix.x0(deis::state<double>(x), s.alpha(t), s.sigma(t), out);
        else
            mix.eps(deis::state<double>(x), s.alpha(t), s.sigma(t), out);
        return mat(out);
    };
}
template <class Schedule>
model_fn x0_model(const Schedule& s) {
    return mixture_model(s, true);
}
template <class Schedule>
model_fn eps_model(const Schedule& s) {
    return mixture_model(s, false);
}

// ---- DPM-Solver++ (LuChengTHU/dpm-solver, multistep, data prediction, solver_type "dpmsolver")

// One update of the given order from the newest entries of the lists (oldest first).
template <class Schedule>
mat dpmpp_update(const Schedule& ns, const mat& x, const std::vector<mat>& model_prev_list,
                 const std::vector<double>& t_prev_list, double t, int order) {
    const std::size_t n = model_prev_list.size();
    const double t_prev_0 = t_prev_list[n - 1];
    const double lambda_prev_0 = lambda_of(ns, t_prev_0), lambda_t = lambda_of(ns, t);
    const double sigma_prev_0 = ns.sigma(t_prev_0), sigma_t = ns.sigma(t), alpha_t = ns.alpha(t);
    const double h = lambda_t - lambda_prev_0;
    const double phi_1 = std::expm1(-h);
    const mat& model_prev_0 = model_prev_list[n - 1];
    if (order == 1) return (sigma_t / sigma_prev_0) * x - (alpha_t * phi_1) * model_prev_0;
    const mat& model_prev_1 = model_prev_list[n - 2];
    const double lambda_prev_1 = lambda_of(ns, t_prev_list[n - 2]);
    const double h_0 = lambda_prev_0 - lambda_prev_1;
    const double r0 = h_0 / h;
    const mat D1_0 = (1.0 / r0) * (model_prev_0 - model_prev_1);
    if (order == 2)
        return (sigma_t / sigma_prev_0) * x - (alpha_t * phi_1) * model_prev_0 - 0.5 * (alpha_t * phi_1) * D1_0;
    const mat& model_prev_2 = model_prev_list[n - 3];
    const double lambda_prev_2 = lambda_of(ns, t_prev_list[n - 3]);
    const double h_1 = lambda_prev_1 - lambda_prev_2;
    const double r1 = h_1 / h;
    const mat D1_1 = (1.0 / r1) * (model_prev_1 - model_prev_2);
    const mat D1 = D1_0 + (r0 / (r0 + r1)) * (D1_0 - D1_1);
    const mat D2 = (1.0 / (r0 + r1)) * (D1_0 - D1_1);
    const double phi_2 = phi_1 / h + 1.0;
    const double phi_3 = phi_2 / h - 0.5;
    return (sigma_t / sigma_prev_0) * x - (alpha_t * phi_1) * model_prev_0 + (alpha_t * phi_2) * D1 -
           (alpha_t * phi_3) * D2;
}

// The official multistep loop: warm-up orders 1..order-1, then `order`, lower orders on the last
// steps when steps < 10; and a step onto sigma = 0 is order 1 (the library's rule).
template <class Schedule>
mat dpmpp_run(const Schedule& ns, const std::vector<double>& ts, int order, mat x, const model_fn& model) {
    const int steps = int(ts.size()) - 1;
    std::vector<mat> model_prev_list{model(x, ts[0])};
    std::vector<double> t_prev_list{ts[0]};
    for (int step = 1; step <= steps; ++step) {
        const double t = ts[std::size_t(step)];
        int step_order = step < order ? step : (steps < 10 ? std::min(order, steps + 1 - step) : order);
        if (ns.sigma(t) == 0.0) step_order = 1;
        x = dpmpp_update(ns, x, model_prev_list, t_prev_list, t, step_order);
        if (step < steps) {
            model_prev_list.push_back(model(x, t));
            t_prev_list.push_back(t);
        }
    }
    return x;
}

// ---- UniPC (wl-zhao/UniPC, multistep_uni_pc_bh_update, data prediction)

// Solves A z = b by Gaussian elimination with partial pivoting.
std::vector<double> solve(std::vector<std::vector<double>> A, std::vector<double> b) {
    const std::size_t n = b.size();
    for (std::size_t c = 0; c < n; ++c) {
        std::size_t piv = c;
        for (std::size_t r = c + 1; r < n; ++r)
            if (std::abs(A[r][c]) > std::abs(A[piv][c])) piv = r;
        std::swap(A[c], A[piv]);
        std::swap(b[c], b[piv]);
        for (std::size_t r = c + 1; r < n; ++r) {
            const double f = A[r][c] / A[c][c];
            for (std::size_t k = c; k < n; ++k) A[r][k] -= f * A[c][k];
            b[r] -= f * b[c];
        }
    }
    std::vector<double> z(n);
    for (std::size_t i = n; i-- > 0;) {
        double v = b[i];
        for (std::size_t k = i + 1; k < n; ++k) v -= A[i][k] * z[k];
        z[i] = v / A[i][i];
    }
    return z;
}

// solve(R[:m, cols], b[:m]) over the columns `cols` of finite rk (a node at lambda = -inf has
// D1 = 0 and drops out), m = their number; 0 for the other columns.
std::vector<double> solve_rks(const std::vector<double>& rks, std::size_t n, const std::vector<double>& b) {
    std::vector<std::size_t> cols;
    for (std::size_t j = 0; j < n; ++j)
        if (std::isfinite(rks[j])) cols.push_back(j);
    std::vector<std::vector<double>> R(cols.size(), std::vector<double>(cols.size()));
    for (std::size_t i = 0; i < cols.size(); ++i)
        for (std::size_t j = 0; j < cols.size(); ++j) R[i][j] = std::pow(rks[cols[j]], double(i));
    const std::vector<double> z = solve(R, std::vector<double>(b.begin(), b.begin() + std::ptrdiff_t(cols.size())));
    std::vector<double> rhos(n, 0.0);
    for (std::size_t j = 0; j < cols.size(); ++j) rhos[cols[j]] = z[j];
    return rhos;
}

struct unipc_result {
    mat x_t;          // the corrected state (the predicted one without the corrector)
    mat x_predicted;  // the predictor's state
    mat model_t;      // the model output at the predicted state (with the corrector)
};

template <class Schedule>
unipc_result unipc_update(const Schedule& ns, const mat& x, const std::vector<mat>& model_prev_list,
                          const std::vector<double>& t_prev_list, double t, int order, bool use_corrector, bool bh2,
                          const model_fn& model) {
    const std::size_t n = model_prev_list.size();
    const double t_prev_0 = t_prev_list[n - 1];
    const double lambda_prev_0 = lambda_of(ns, t_prev_0), lambda_t = lambda_of(ns, t);
    const mat& model_prev_0 = model_prev_list[n - 1];
    const double sigma_prev_0 = ns.sigma(t_prev_0), sigma_t = ns.sigma(t), alpha_t = ns.alpha(t);
    const double h = lambda_t - lambda_prev_0;
    std::vector<double> rks;
    std::vector<mat> D1s;
    for (int i = 1; i < order; ++i) {
        const double t_prev_i = t_prev_list[n - 1 - std::size_t(i)];
        const mat& model_prev_i = model_prev_list[n - 1 - std::size_t(i)];
        const double rk = (lambda_of(ns, t_prev_i) - lambda_prev_0) / h;
        rks.push_back(rk);
        D1s.push_back((model_prev_i - model_prev_0) / rk);
    }
    rks.push_back(1.0);
    const double hh = -h;
    const double h_phi_1 = std::expm1(hh);
    double h_phi_k = h_phi_1 / hh - 1.0;
    double factorial_i = 1.0;
    const double B_h = bh2 ? std::expm1(hh) : hh;
    std::vector<double> b;
    for (int i = 1; i <= order; ++i) {
        b.push_back(h_phi_k * factorial_i / B_h);
        factorial_i *= i + 1;
        h_phi_k = h_phi_k / hh - 1.0 / factorial_i;
    }
    mat pred_res = mat::Zero(x.rows(), x.cols());
    if (!D1s.empty()) {
        const std::vector<double> rhos_p =
            order == 2 ? std::vector<double>{0.5} : solve_rks(rks, std::size_t(order - 1), b);
        for (std::size_t k = 0; k < D1s.size(); ++k) pred_res += rhos_p[k] * D1s[k];
    }
    unipc_result out;
    const mat x_t_ = (sigma_t / sigma_prev_0) * x - (alpha_t * h_phi_1) * model_prev_0;
    // order 1 is DDIM: no B(h) term (B(h) = h is infinite on a step onto sigma = 0)
    out.x_predicted = D1s.empty() ? x_t_ : mat(x_t_ - (alpha_t * B_h) * pred_res);
    out.x_t = out.x_predicted;
    if (use_corrector) {
        const std::vector<double> rhos_c =
            order == 1 ? std::vector<double>{0.5} : solve_rks(rks, std::size_t(order), b);
        out.model_t = model(out.x_predicted, t);
        mat corr_res = mat::Zero(x.rows(), x.cols());
        for (std::size_t k = 0; k < D1s.size(); ++k) corr_res += rhos_c[k] * D1s[k];
        const mat D1_t = out.model_t - model_prev_0;
        out.x_t = x_t_ - (alpha_t * B_h) * (corr_res + rhos_c.back() * D1_t);
    }
    return out;
}

// The official sample loop: warm-up with the corrector, then lower_order_final (always), no
// corrector on the last step; the history keeps the model output at the predicted state.
template <class Schedule>
mat unipc_run(const Schedule& ns, const std::vector<double>& ts, int order, bool bh2, mat x, const model_fn& model) {
    const int steps = int(ts.size()) - 1;
    std::vector<mat> model_prev_list{model(x, ts[0])};
    std::vector<double> t_prev_list{ts[0]};
    for (int init_order = 1; init_order < order; ++init_order) {
        const double t = ts[std::size_t(init_order)];
        const unipc_result u = unipc_update(ns, x, model_prev_list, t_prev_list, t, init_order, true, bh2, model);
        x = u.x_t;
        model_prev_list.push_back(u.model_t);
        t_prev_list.push_back(t);
    }
    for (int step = order; step <= steps; ++step) {
        const double t = ts[std::size_t(step)];
        const int step_order = std::min(order, steps + 1 - step);
        const bool use_corrector = step != steps;
        const unipc_result u =
            unipc_update(ns, x, model_prev_list, t_prev_list, t, step_order, use_corrector, bh2, model);
        x = u.x_t;
        for (int i = 0; i + 1 < order; ++i) {
            t_prev_list[std::size_t(i)] = t_prev_list[std::size_t(i + 1)];
            model_prev_list[std::size_t(i)] = model_prev_list[std::size_t(i + 1)];
        }
        t_prev_list.back() = t;
        if (step < steps) model_prev_list.back() = u.model_t;
    }
    return x;
}

// ---- diffusers' DEISMultistepScheduler (solver_type "logrho", noise prediction)

// t log t, with its limit 0 at t = 0 (a step onto rho = 0)
double tlog(double t, double c) { return t == 0.0 ? 0.0 : t * (std::log(t) - c); }

double ind_fn2(double t, double b, double c) {
    return (tlog(t, std::log(c)) - t) / (std::log(b) - std::log(c));
}

double ind_fn3(double t, double b, double c, double d) {
    if (t == 0.0) return 0.0;
    const double lt = std::log(t), lc = std::log(c), ld = std::log(d);
    const double numerator = t * (lc * (ld - lt + 1) - ld * lt + ld + lt * lt - 2 * lt + 2);
    const double denominator = (std::log(b) - lc) * (std::log(b) - ld);
    return numerator / denominator;
}

template <class Schedule>
mat deis_update(const Schedule& ns, const mat& sample, const std::vector<mat>& model_output_list,
                const std::vector<double>& ts, double t, int order) {
    const std::size_t n = model_output_list.size();
    const double alpha_t = ns.alpha(t), alpha_s0 = ns.alpha(ts[n - 1]);
    const double rho_t = ns.sigma(t) / alpha_t, rho_s0 = ns.sigma(ts[n - 1]) / alpha_s0;
    const mat& m0 = model_output_list[n - 1];
    if (order == 1) return alpha_t * (sample / alpha_s0 + (rho_t - rho_s0) * m0);
    const mat& m1 = model_output_list[n - 2];
    const double rho_s1 = ns.sigma(ts[n - 2]) / ns.alpha(ts[n - 2]);
    if (order == 2) {
        const double coef1 = ind_fn2(rho_t, rho_s0, rho_s1) - ind_fn2(rho_s0, rho_s0, rho_s1);
        const double coef2 = ind_fn2(rho_t, rho_s1, rho_s0) - ind_fn2(rho_s0, rho_s1, rho_s0);
        return alpha_t * (sample / alpha_s0 + coef1 * m0 + coef2 * m1);
    }
    const mat& m2 = model_output_list[n - 3];
    const double rho_s2 = ns.sigma(ts[n - 3]) / ns.alpha(ts[n - 3]);
    const double coef1 = ind_fn3(rho_t, rho_s0, rho_s1, rho_s2) - ind_fn3(rho_s0, rho_s0, rho_s1, rho_s2);
    const double coef2 = ind_fn3(rho_t, rho_s1, rho_s2, rho_s0) - ind_fn3(rho_s0, rho_s1, rho_s2, rho_s0);
    const double coef3 = ind_fn3(rho_t, rho_s2, rho_s0, rho_s1) - ind_fn3(rho_s0, rho_s2, rho_s0, rho_s1);
    return alpha_t * (sample / alpha_s0 + coef1 * m0 + coef2 * m1 + coef3 * m2);
}

// diffusers' step(): first, second or third order by lower_order_nums and lower_order_final
// (n < 15).
template <class Schedule>
mat deis_run(const Schedule& ns, const std::vector<double>& ts, int solver_order, mat x, const model_fn& model) {
    const int n = int(ts.size()) - 1;
    std::vector<mat> outputs;
    std::vector<double> times;
    int lower_order_nums = 0;
    for (int step_index = 0; step_index < n; ++step_index) {
        outputs.push_back(model(x, ts[std::size_t(step_index)]));
        times.push_back(ts[std::size_t(step_index)]);
        const bool lower_order_final = step_index == n - 1 && n < 15;
        const bool lower_order_second = step_index == n - 2 && n < 15;
        int order = 3;
        if (solver_order == 1 || lower_order_nums < 1 || lower_order_final)
            order = 1;
        else if (solver_order == 2 || lower_order_nums < 2 || lower_order_second)
            order = 2;
        x = deis_update(ns, x, outputs, times, ts[std::size_t(step_index + 1)], order);
        if (lower_order_nums < solver_order) ++lower_order_nums;
    }
    return x;
}

// ---- iPNDM (Zhang & Chen 2022): Adams-Bashforth on eps in (x/alpha, rho), warm-up 1, 2, 3

template <class Schedule>
mat ipndm_run(const Schedule& ns, const std::vector<double>& ts, mat x, const model_fn& model) {
    std::vector<mat> eps;  // newest last
    for (std::size_t i = 0; i + 1 < ts.size(); ++i) {
        eps.push_back(model(x, ts[i]));
        const std::size_t n = eps.size();
        mat e;
        if (n == 1)
            e = eps[0];
        else if (n == 2)
            e = (3 * eps[1] - eps[0]) / 2;
        else if (n == 3)
            e = (23 * eps[2] - 16 * eps[1] + 5 * eps[0]) / 12;
        else
            e = (55 * eps[n - 1] - 59 * eps[n - 2] + 37 * eps[n - 3] - 9 * eps[n - 4]) / 24;
        const double a0 = ns.alpha(ts[i]), a1 = ns.alpha(ts[i + 1]);
        x = a1 * (x / a0 + (ns.sigma(ts[i + 1]) / a1 - ns.sigma(ts[i]) / a0) * e);
    }
    return x;
}

// ---- Euler in (x/alpha, sigma/alpha) (k-diffusion's sample_euler on EDM)

template <class Schedule>
mat euler_run(const Schedule& ns, const std::vector<double>& ts, mat x, const model_fn& eps) {
    for (std::size_t i = 0; i + 1 < ts.size(); ++i) {
        const double a0 = ns.alpha(ts[i]), a1 = ns.alpha(ts[i + 1]);
        const mat d = eps(x, ts[i]);  // d(x/alpha)/d(sigma/alpha)
        x = a1 * (x / a0 + (ns.sigma(ts[i + 1]) / a1 - ns.sigma(ts[i]) / a0) * d);
    }
    return x;
}

// ---- the library's runs

template <class Schedule>
mat library_run(const Schedule& s, const std::vector<double>& grid, const std::string& name, deis::model_output out,
                const mat& x_start) {
    deis::multistep_options o = deis::parse_multistep(name);
    o.output = out;
    const deis::multistep_solver solver(s, grid, o);
    const deis::gmm_model<Schedule> net(mixture(), s, out);
    deis::state<double> x = x_start;
    const deis::sample_result r = solver.sample(net, x);
    REQUIRE(r.ok());
    CHECK(r.nfe == int(grid.size()) - 1);
    return x;
}

std::vector<double> vp_grid(int steps) {
    return deis::power_t_grid(deis::vp_linear{}, steps, 1.0, 1e-3, 2.0);
}

// Karras levels from 80 to 0.002 in steps - 1 steps, then sigma = 0 (k-diffusion's grid).
std::vector<double> edm_grid(int steps) {
    std::vector<double> levels = deis::sigma_levels(deis::noise_levels::karras, steps - 1, 80.0, 0.002);
    levels.push_back(0.0);
    return deis::sigma_grid(deis::edm{}, levels);
}

std::vector<double> flow_grid(int steps) { return deis::power_t_grid(deis::flow_matching{}, steps, 1.0, 0.0, 1.0); }

// The reference and the library on one case; returns the relative difference.
template <class Schedule, class Reference>
double compare(const Schedule& s, const std::vector<double>& grid, const std::string& name, deis::model_output out,
               const mat& x_start, Reference&& reference) {
    const mat ours = library_run(s, grid, name, out, x_start);
    const mat theirs = reference(s, grid, x_start);
    const double d = rel(ours, theirs);
    INFO(name << ", " << grid.size() - 1 << " steps: relative difference " << d);
    // Both sides evaluate the same published formula with different association (the library
    // expands it into weights on each history point): a few ulps per step of terms at most
    // ~10 times the result, over <= 16 steps of a contracting flow: ~1e-14; 1e-12 is the bar
    // of issue 23.
    CHECK(d < 1e-12);
    return d;
}

}  // namespace presets_test

using presets_test::mat;

TEST_CASE("presets: the names read back as themselves and name their methods", "[presets][config]") {
    using deis::multistep_method;
    struct expected {
        const char* name;
        multistep_method method;
        int order;
    };
    for (const expected& e : {expected{"dpmpp_2m", multistep_method::dpmpp, 1},
                              expected{"dpmpp_3m", multistep_method::dpmpp, 2},
                              expected{"uni_pc", multistep_method::unipc_bh1, -1},
                              expected{"uni_pc_bh2", multistep_method::unipc_bh2, -1},
                              expected{"uni_pc+order=2", multistep_method::unipc_bh1, 1},
                              expected{"uni_pc_bh2+order=1", multistep_method::unipc_bh2, 0},
                              expected{"deis", multistep_method::deis_logrho, -1},
                              expected{"deis+order=3", multistep_method::deis_logrho, 2},
                              expected{"euler", multistep_method::euler, -1},
                              expected{"ipndm", multistep_method::ipndm, -1},
                              expected{"ddim", multistep_method::ddim, -1}}) {
        CAPTURE(e.name);
        const deis::solver_config c = deis::parse_solver_config(e.name);
        CHECK(c.kind == deis::solver_kind::multistep);
        CHECK(c.multistep.method == e.method);
        CHECK(c.multistep.order == e.order);
        CHECK(deis::to_string(c) == e.name);
        const deis::solver_config again = deis::parse_solver_config(deis::to_string(c));
        CHECK(again.multistep.method == c.multistep.method);
        CHECK(again.multistep.order == c.multistep.order);
    }
    // the defaults: published orders 3 (uni_pc), 2 (deis), the prediction of each preset
    const deis::multistep_options u = deis::resolve_defaults(deis::parse_multistep("uni_pc_bh2"));
    CHECK(u.order == 2);
    CHECK(u.predict == deis::prediction::data);
    const deis::multistep_options d = deis::resolve_defaults(deis::parse_multistep("deis"));
    CHECK(d.order == 1);
    CHECK(d.predict == deis::prediction::noise);
    // "ipndm" is the published (fourth-order) iPNDM: order 3, noise prediction
    const deis::multistep_options i = deis::resolve_defaults(deis::parse_multistep("ipndm"));
    CHECK(i.order == 3);
    CHECK(i.predict == deis::prediction::noise);
    // a resolved preset reads back (order=P spelled out)
    deis::solver_config r;
    r.multistep = u;
    CHECK(deis::to_string(r) == "uni_pc_bh2+order=3+data");
    CHECK(deis::parse_solver_config(deis::to_string(r)).multistep.order == 2);

    // heun: rk heun2 with the Euler step onto sigma = 0
    const deis::solver_config heun = deis::parse_solver_config("heun");
    CHECK(heun.kind == deis::solver_kind::runge_kutta);
    CHECK(heun.tableau == "heun2");
    CHECK(heun.rk.final_euler);
    CHECK(deis::to_string(heun) == "heun");
    CHECK_FALSE(deis::parse_solver_config("rk:heun2").rk.final_euler);
    CHECK(deis::to_string(deis::parse_solver_config("rk:heun2")) == "rk:heun2");
    CHECK(deis::calls_per_step(heun) == 2);
    deis::solver_config rk4 = deis::parse_solver_config("rk:rk4");
    rk4.rk.final_euler = true;
    CHECK(presets_test::has(deis::solver_config_faults(rk4).at(0), "final_euler = true is named only with tableau heun2"));
}

TEST_CASE("presets: modifiers that would change a published method are refused", "[presets][faults]") {
    using presets_test::has;
    using presets_test::refusal;
    const auto fault_of = [](const char* name) { return refusal([&] { deis::parse_solver_config(name); }); };
    CHECK(has(fault_of("dpmpp_2m+corrector"),
              "corrector = true does not apply to the preset dpmpp_2m, which reproduces the published method"));
    CHECK(has(fault_of("uni_pc+corrector"), "(its own corrector is part of it)"));
    CHECK(has(fault_of("uni_pc_bh2+noise"),
              "predict = prediction::noise does not apply to the preset uni_pc_bh2: it is data prediction as published"));
    CHECK(has(fault_of("deis+data"),
              "predict = prediction::data does not apply to the preset deis: it is noise prediction as published"));
    CHECK(has(fault_of("dpmpp_3m+sde"), "sde = true does not apply to the preset dpmpp_3m"));
    CHECK(has(fault_of("euler+eta=0.5"), "eta = 0.5 does not apply to the preset euler"));
    CHECK(has(fault_of("deis+clock=vp"), "clock = vp_linear is tAB's polynomial variable: it needs method tab"));
    CHECK(has(fault_of("dpmpp_2m+final=2:1"), "final_steps = 2 does not apply to the preset dpmpp_2m"));
    CHECK(has(fault_of("tab3+order=2"), "modifier \"order=2\" applies to uni_pc, uni_pc_bh2 and deis only"));
    CHECK(has(fault_of("dpmpp_2m+order=2"), "applies to uni_pc, uni_pc_bh2 and deis only"));
    CHECK(has(fault_of("deis+order=4"), "the published order must be 1, 2 or 3"));
    CHECK(has(fault_of("heun+data"), "\"data\": heun takes no modifier"));
    CHECK(has(fault_of("dpmpp"), "is not a solver"));
    // "+data" on a data-prediction preset changes nothing and is accepted
    CHECK(deis::to_string(deis::parse_solver_config("dpmpp_2m+data")) == "dpmpp_2m+data");
    deis::multistep_options o;
    o.method = deis::multistep_method::dpmpp;
    o.order = 0;
    o.invert = true;
    const std::vector<std::string> f = deis::multistep_faults(o);
    REQUIRE(f.size() == 2);
    CHECK(f[0] == "order = 0 must be 1 (dpmpp_2m) or 2 (dpmpp_3m) for dpmpp");
    CHECK(has(f[1], "invert = true is not available for the preset"));

    // the ends: noise prediction cannot start at pure noise, nor uni_pc's B(h) = h
    const deis::flow_matching flow;
    const std::vector<double> grid = presets_test::flow_grid(6);
    for (const char* name : {"deis", "ipndm"}) {
        CAPTURE(name);
        deis::multistep_options p = deis::parse_multistep(name);
        p.output = deis::model_output::velocity;
        CHECK(has(refusal([&] { deis::multistep_solver(flow, grid, p); }), "noise prediction"));
    }
    CHECK(has(refusal([&] { deis::multistep_solver(flow, grid, deis::parse_multistep("uni_pc")); }),
              "use uni_pc_bh2"));
}

TEST_CASE("presets: one step of every order is the published update", "[presets][step]") {
    using namespace presets_test;
    const deis::vp_linear vp;
    const std::vector<double> grid = vp_grid(12);
    // random histories: m[j] is the prediction at grid[k - j]
    std::vector<mat> m;
    for (int j = 0; j < 5; ++j) m.push_back(mat::Random(2, 4));
    const mat x = mat::Random(2, 4);
    double worst = 0.0;
    const auto apply = [&](const deis::step_coefficients& row, bool corrector) {
        mat out = row.x_coef * x;
        if (!corrector) {
            for (int j = 0; j <= row.order; ++j) out += row.c[std::size_t(j)] * m[std::size_t(j + 1)];
        } else {
            out += row.d[0] * m[0];  // m[0]: the output at the predicted state
            for (int j = 1; j <= row.corrector_order; ++j) out += row.d[std::size_t(j)] * m[std::size_t(j)];
        }
        return out;
    };
    // the lists of the published codes, oldest first, for the step from grid[k]
    const auto lists = [&](int k, int p, std::vector<mat>& models, std::vector<double>& times) {
        models.clear();
        times.clear();
        for (int j = p - 1; j >= 0; --j) {
            models.push_back(m[std::size_t(j + 1)]);
            times.push_back(grid[std::size_t(k - j)]);
        }
    };
    // Tolerances: one step, the same formula with different association: a few ulps of the
    // largest term (extrapolation weights up to ~10): 1e-13.
    for (const char* name : {"dpmpp_3m", "uni_pc", "uni_pc_bh2", "deis+order=3"}) {
        const deis::multistep_solver solver(vp, grid, deis::parse_multistep(name));
        for (int k = 0; k < 3; ++k) {
            const deis::step_coefficients& row = solver.table()[std::size_t(k)];
            const int p = k + 1;
            CAPTURE(name, k);
            REQUIRE(row.order == p - 1);
            std::vector<mat> models;
            std::vector<double> times;
            lists(k, p, models, times);
            const double t = grid[std::size_t(k + 1)];
            const std::string n = name;
            mat expected;
            if (n == "dpmpp_3m") expected = dpmpp_update(vp, x, models, times, t, p);
            if (n == "deis+order=3") expected = deis_update(vp, x, models, times, t, p);
            if (n.rfind("uni_pc", 0) == 0) {
                const model_fn fixed = [&](const mat&, double) { return m[0]; };
                const unipc_result u = unipc_update(vp, x, models, times, t, p, true, n == "uni_pc_bh2", fixed);
                expected = u.x_predicted;
                REQUIRE(row.corrector_order == p);
                const double dc = rel(apply(row, true), u.x_t);
                worst = std::max(worst, dc);
                CHECK(dc < 1e-13);
            }
            const double d = rel(apply(row, false), expected);
            worst = std::max(worst, d);
            CHECK(d < 1e-13);
        }
    }
    WARN("one step: largest relative difference " << worst);
}

TEST_CASE("presets: deis of order 3 integrates the log-rho basis as quadrature does", "[presets][deis]") {
    const deis::vp_linear vp;
    const std::vector<double> grid = presets_test::vp_grid(10);
    const deis::multistep_solver solver(vp, grid, deis::parse_multistep("deis+order=3"));
    for (int k = 2; k < 6; ++k) {
        const deis::step_coefficients& row = solver.table()[std::size_t(k)];
        REQUIRE(row.order == 2);
        std::array<double, 3> y{};
        for (int j = 0; j < 3; ++j) y[std::size_t(j)] = std::log(vp.rho(grid[std::size_t(k - j)]));
        const double y0 = y[0], y1 = std::log(vp.rho(grid[std::size_t(k + 1)]));
        // composite Simpson in y = log rho of l_j(y) e^y (drho = e^y dy), 4000 intervals
        const int n = 4000;
        for (int j = 0; j < 3; ++j) {
            const auto f = [&](double v) {
                double l = 1.0;
                for (int i = 0; i < 3; ++i)
                    if (i != j) l *= (v - y[std::size_t(i)]) / (y[std::size_t(j)] - y[std::size_t(i)]);
                return l * std::exp(v);
            };
            const double hstep = (y1 - y0) / n;
            double sum = f(y0) + f(y1);
            for (int i = 1; i < n; ++i) sum += (i % 2 ? 4.0 : 2.0) * f(y0 + i * hstep);
            const double quad = vp.alpha(grid[std::size_t(k + 1)]) * sum * hstep / 3.0;
            CAPTURE(k, j);
            // Simpson's error ~ (y1 - y0)^5 / n^4 * max|f''''| ~ 1e-15 here; 1e-11 leaves room
            // for the round-off of 4000 terms
            CHECK(row.c[std::size_t(j)] == Approx(quad).epsilon(1e-11));
        }
    }
}

TEST_CASE("presets: whole runs on a mixture equal the published samplers", "[presets][run]") {
    using namespace presets_test;
    const deis::vp_linear vp;
    const deis::edm edm;
    const deis::flow_matching flow;
    const mat x_vp = noise(), x_edm = 80.0 * noise(), x_flow = noise();
    const auto x0 = deis::model_output::x0, eps = deis::model_output::eps;
    std::vector<std::pair<std::string, double>> worst;
    const auto record = [&](const std::string& name, double d) {
        for (auto& w : worst)
            if (w.first == name) return void(w.second = std::max(w.second, d));
        worst.emplace_back(name, d);
    };

    for (const auto& [name, order] : {std::pair<const char*, int>{"dpmpp_2m", 2}, {"dpmpp_3m", 3}}) {
        const auto ref = [order = order](const auto& s, const std::vector<double>& g, const mat& x) {
            return dpmpp_run(s, g, order, x, x0_model(s));
        };
        for (int steps : {5, 8, 12}) record(name, compare(vp, vp_grid(steps), name, x0, x_vp, ref));
        for (int steps : {6, 12}) record(name, compare(edm, edm_grid(steps), name, x0, x_edm, ref));
        for (int steps : {5, 12}) record(name, compare(flow, flow_grid(steps), name, x0, x_flow, ref));
    }
    for (const auto& [name, bh2] : {std::pair<const char*, bool>{"uni_pc", false}, {"uni_pc_bh2", true}}) {
        for (int p : {1, 2, 3}) {
            const std::string full = std::string(name) + (p == 3 ? "" : "+order=" + std::to_string(p));
            const auto ref = [p, bh2 = bh2](const auto& s, const std::vector<double>& g, const mat& x) {
                return unipc_run(s, g, p, bh2, x, x0_model(s));
            };
            for (int steps : {5, 8, 12}) record(name, compare(vp, vp_grid(steps), full, x0, x_vp, ref));
            for (int steps : {6, 12}) record(name, compare(edm, edm_grid(steps), full, x0, x_edm, ref));
            if (bh2)
                for (int steps : {5, 12}) record(name, compare(flow, flow_grid(steps), full, x0, x_flow, ref));
        }
    }
    for (int p : {1, 2, 3}) {
        const std::string full = "deis" + (p == 2 ? std::string() : "+order=" + std::to_string(p));
        const auto ref = [p](const auto& s, const std::vector<double>& g, const mat& x) {
            return deis_run(s, g, p, x, eps_model(s));
        };
        // 16 steps: no lower orders at the end (n >= 15), and on EDM the limit at rho = 0
        for (int steps : {5, 8, 12, 16}) record("deis", compare(vp, vp_grid(steps), full, eps, x_vp, ref));
        for (int steps : {6, 16}) record("deis", compare(edm, edm_grid(steps), full, eps, x_edm, ref));
    }
    {
        const auto ref = [](const auto& s, const std::vector<double>& g, const mat& x) {
            return ipndm_run(s, g, x, eps_model(s));
        };
        for (int steps : {5, 8, 12}) record("ipndm", compare(vp, vp_grid(steps), "ipndm", eps, x_vp, ref));
        for (int steps : {6, 12}) record("ipndm", compare(edm, edm_grid(steps), "ipndm", eps, x_edm, ref));
    }
    {
        const auto ref = [](const auto& s, const std::vector<double>& g, const mat& x) {
            return euler_run(s, g, x, eps_model(s));
        };
        for (int steps : {5, 12}) record("euler", compare(vp, vp_grid(steps), "euler", eps, x_vp, ref));
        for (int steps : {6, 12}) record("euler", compare(edm, edm_grid(steps), "euler", eps, x_edm, ref));
        // flow matching: Euler on the velocity, x + (t_next - t) v
        const deis::gmm_model<deis::flow_matching> v(mixture(), flow, deis::model_output::velocity);
        const auto flow_ref = [&v](const auto&, const std::vector<double>& g, const mat& x_in) {
            deis::state<double> x = x_in, out;
            for (std::size_t i = 0; i + 1 < g.size(); ++i) {
                out.resize(x.rows(), x.cols());
                v(x, g[i], out);
                x += (g[i + 1] - g[i]) * out;
            }
            return mat(x);
        };
        for (int steps : {5, 12})
            record("euler", compare(flow, flow_grid(steps), "euler", deis::model_output::velocity, x_flow, flow_ref));
    }
    for (const auto& [name, d] : worst) WARN(name << ": largest relative difference " << d);
}

TEST_CASE("presets: euler builds exactly DDIM's table", "[presets][euler]") {
    for (const bool flow_case : {false, true}) {
        const auto check = [](const auto& s, const std::vector<double>& grid) {
            deis::multistep_options eo = deis::parse_multistep("euler"), dd = deis::parse_multistep("ddim");
            eo.output = dd.output = deis::model_output::velocity;
            const deis::multistep_solver e(s, grid, eo);
            const deis::multistep_solver d(s, grid, dd);
            for (std::size_t k = 0; k < e.table().size(); ++k) {
                CHECK(e.table()[k].x_coef == d.table()[k].x_coef);
                CHECK(e.table()[k].c[0] == d.table()[k].c[0]);
            }
        };
        if (flow_case)
            check(deis::flow_matching{}, presets_test::flow_grid(7));
        else
            check(deis::vp_linear{}, presets_test::vp_grid(7));
    }
}

namespace {

// tAB whose polynomial variable is affine in lambda (ve's t, or tab_clock::log_snr on any
// schedule: `clock` is appended to the names) against the closed forms of DPM-Solver++ and
// diffusers' DEIS: tab1+data integrates DPM-Solver++(2M)'s linear x0 exactly (diffusers'
// solver_type "heun"), tab2+data is 3M with twice its D2 (FIELD.md 5.2), and tab1, tab2 are
// diffusers' DEIS of order 2, 3.
template <class Schedule>
void check_lambda_counterparts(const Schedule& sch, const std::vector<double>& grid, const std::string& clock) {
    const deis::multistep_solver tab1d(sch, grid, deis::parse_multistep("tab1+data" + clock));
    const deis::multistep_solver tab2d(sch, grid, deis::parse_multistep("tab2+data" + clock));
    const deis::multistep_solver tab1(sch, grid, deis::parse_multistep("tab1" + clock));
    const deis::multistep_solver tab2(sch, grid, deis::parse_multistep("tab2" + clock));
    const deis::multistep_solver deis2(sch, grid, deis::parse_multistep("deis"));
    const deis::multistep_solver deis3(sch, grid, deis::parse_multistep("deis+order=3"));
    const auto lam = [&](std::size_t i) { return presets_test::lambda_of(sch, grid[i]); };
    for (std::size_t k = 2; k + 1 < grid.size(); ++k) {
        CAPTURE(clock, k);
        const double a = sch.alpha(grid[k + 1]);
        const double h = lam(k + 1) - lam(k), r0 = (lam(k) - lam(k - 1)) / h, r1 = (lam(k - 1) - lam(k - 2)) / h;
        const double phi1 = std::expm1(-h), phi2 = phi1 / h + 1.0, phi3 = phi2 / h - 0.5;
        // 2M, heun form: - a phi1 m0 + a phi2 (m0 - m1) / r0
        const auto& row1 = tab1d.table()[k];
        // tAB's weights come from quadrature (~1e-14) and are extrapolation weights of size ~2
        CHECK(row1.c[0] == Approx(-a * phi1 + a * phi2 / r0).epsilon(1e-12));
        CHECK(row1.c[1] == Approx(-a * phi2 / r0).epsilon(1e-12));
        // 3M with 2 D2: - a phi1 m0 + a phi2 D1 - 2 a phi3 D2
        const double q = r0 / (r0 + r1), a3 = 2.0 * a * phi3 / (r0 + r1);
        const double e0 = -a * phi1 + a * phi2 * (1 + q) / r0 - a3 / r0;
        const double e1 = a * phi2 * (-1.0 / r0 - q * (1.0 / r0 + 1.0 / r1)) + a3 * (1.0 / r0 + 1.0 / r1);
        const double e2 = a * phi2 * q / r1 - a3 / r1;
        const auto& row2 = tab2d.table()[k];
        CHECK(row2.c[0] == Approx(e0).epsilon(1e-12));
        CHECK(row2.c[1] == Approx(e1).epsilon(1e-12));
        CHECK(row2.c[2] == Approx(e2).epsilon(1e-12));
        for (int j = 0; j < 3; ++j) {
            if (j < 2) CHECK(tab1.table()[k].c[std::size_t(j)] == Approx(deis2.table()[k].c[std::size_t(j)]).epsilon(1e-12));
            CHECK(tab2.table()[k].c[std::size_t(j)] == Approx(deis3.table()[k].c[std::size_t(j)]).epsilon(1e-12));
        }
    }
}

}  // namespace

TEST_CASE("presets: on VE, tAB is the exact-integral counterpart of DPM-Solver++ and DEIS", "[presets][ve]") {
    const deis::ve ve;
    check_lambda_counterparts(ve, deis::power_t_grid(ve, 16, 1.0, 0.0, 1.0), "");
}

TEST_CASE("presets: on the log-SNR clock, tAB is that counterpart on every schedule", "[presets][clock]") {
    const deis::vp_linear vp;
    check_lambda_counterparts(vp, deis::power_t_grid(vp, 16, 1.0, 1e-3, 2.0), "+clock=logsnr");
    check_lambda_counterparts(vp, deis::power_t_grid(vp, 16, 1.0, 1e-3, 1.0), "+clock=logsnr");
    const deis::vp_cosine cosine;
    check_lambda_counterparts(cosine, deis::log_rho_grid(cosine, 16, 0.9946, 1e-3), "+clock=logsnr");
    const deis::edm edm;
    check_lambda_counterparts(edm, deis::power_rho_grid(edm, 16, 80.0, 0.002, 7.0), "+clock=logsnr");
}
