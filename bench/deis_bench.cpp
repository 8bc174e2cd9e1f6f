// deis-bench: error versus number of network evaluations (NFE) for every solver and grid on
// a Gaussian mixture, whose exact noise prediction is known.
//
// For one problem (a mixture and a schedule) it draws x_T, integrates the probability-flow
// ODE to t_end with an adaptive high-order integrator (deis/reference.hpp) to get the
// reference solution, then runs every solver x grid x NFE budget from the same x_T and
// measures, per sample, e_i = ||x_i - x_ref_i|| / sqrt(D). It reports the median and RMS of
// e_i, the largest e_i, and how many samples ended in another mixture component than their
// reference (most_likely_component). Output: markdown tables on stdout (also table.md),
// results.csv, and log-log plots of median error versus NFE (PNG through gnuplot).
//
//   deis-bench                          the 2-D ring of 8 Gaussians, VP linear (about 10 s)
//   deis-bench --case gmm16d            a 16-D mixture of 5 components
//   deis-bench --case ve                the ring under the VE schedule
//   deis-bench --mixture m.json         your own mixture (JSON or CSV, see mixture_io.hpp)
//   deis-bench --solvers 'tab*,ddim' --grids t2 --nfe 10,20
//   deis-bench --check-reference tests/data
//   deis-bench --list                   the solvers and grids
#include <CLI/CLI.hpp>
#include <Eigen/Core>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <deis/deis.hpp>
#include <deis/recommended.hpp>
#include <deis/reference.hpp>
#include <filesystem>
#include <fnmatch.h>
#include <fstream>
#include <functional>
#include <iomanip>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <unistd.h>
#include <utility>
#include <vector>

#include "bench_support.hpp"
#include "support/csv_io.hpp"
#include "support/mixture_io.hpp"

#include <deis/rk.hpp>

namespace {

namespace fs = std::filesystem;
using clock_type = std::chrono::steady_clock;
using deis::multistep_method;
using deis::prediction;

double seconds_since(clock_type::time_point t0) {
    return std::chrono::duration<double>(clock_type::now() - t0).count();
}

// ---- The solvers: one line each ------------------------------------------------------------

// A solver of the sweep: a multistep method with its options, the library's recommended
// multistep configuration for the grid (deis/recommended.hpp), or a Runge-Kutta tableau of
// deis/rk.hpp by name. `family` chooses the panel of the plots.
struct solver_spec {
    std::string name;
    std::string family;
    std::optional<deis::multistep_options> multistep;  // empty: recommended or Runge-Kutta
    std::string tableau;                               // empty: recommended
    int stages = 1;                                    // network calls per step
};

solver_spec recommended() { return {"recommended", "corrector", std::nullopt, "", 1}; }

solver_spec ms(const std::string& name, const std::string& family, multistep_method method, int order,
               bool corrector = false, prediction predict = prediction::noise) {
    return {name, family, deis_bench::multistep(method, order, corrector, predict), "", 1};
}

solver_spec rk(const std::string& tableau) {
    const int stages = deis::with_tableau(tableau, [](auto t) { return int(decltype(t)::stages); });
    return {tableau, "rk", std::nullopt, tableau, stages};
}

std::vector<solver_spec> solver_table() {
    using M = multistep_method;
    const auto corr = true;
    const auto data = prediction::data;
    return {
        ms("ddim", "multistep", M::ddim, 0),
        ms("tab1", "multistep", M::tab, 1),
        ms("tab2", "multistep", M::tab, 2),
        ms("tab3", "multistep", M::tab, 3),
        ms("rhoab1", "multistep", M::rhoab, 1),
        ms("rhoab2", "multistep", M::rhoab, 2),
        ms("rhoab3", "multistep", M::rhoab, 3),
        ms("ipndm", "multistep", M::ipndm, 3),
        ms("ddim+corrector", "corrector", M::ddim, 0, corr),
        ms("tab1+corrector", "corrector", M::tab, 1, corr),
        ms("tab2+corrector", "corrector", M::tab, 2, corr),
        ms("tab3+corrector", "corrector", M::tab, 3, corr),
        ms("rhoab1+corrector", "corrector", M::rhoab, 1, corr),
        ms("rhoab2+corrector", "corrector", M::rhoab, 2, corr),
        ms("rhoab3+corrector", "corrector", M::rhoab, 3, corr),
        recommended(),
        ms("ddim+data", "data", M::ddim, 0, false, data),
        ms("tab1+data", "data", M::tab, 1, false, data),
        ms("tab2+data", "data", M::tab, 2, false, data),
        ms("tab3+data", "data", M::tab, 3, false, data),
        ms("rhoab1+data", "data", M::rhoab, 1, false, data),
        ms("rhoab2+data", "data", M::rhoab, 2, false, data),
        ms("rhoab3+data", "data", M::rhoab, 3, false, data),
        ms("ipndm+data", "data", M::ipndm, 3, false, data),
        ms("tab1+data+corrector", "data", M::tab, 1, corr, data),
        ms("tab2+data+corrector", "data", M::tab, 2, corr, data),
        ms("tab3+data+corrector", "data", M::tab, 3, corr, data),
        ms("rhoab3+data+corrector", "data", M::rhoab, 3, corr, data),
        rk("heun2"),
        rk("kutta3"),
        rk("rk4"),
    };
}

const std::vector<std::string> family_order = {"multistep", "corrector", "data", "rk"};
const std::map<std::string, std::string> family_title = {
    {"multistep", "multistep, noise prediction"},
    {"corrector", "multistep + corrector"},
    {"data", "multistep, data prediction"},
    {"rk", "rhoRK (Runge-Kutta in rho)"}};

struct grid_spec {
    std::string name;
    deis::grid_kind kind;
    double power;
    std::string description;
};

const std::vector<grid_spec>& grid_table() {
    static const std::vector<grid_spec> grids = {
        {"t2", deis::grid_kind::power_t, 2.0, "quadratic in t (the DEIS default)"},
        {"log", deis::grid_kind::log_rho, 0.0, "uniform in log rho"},
        {"rho7", deis::grid_kind::power_rho, 7.0, "uniform in rho^(1/7) (EDM/Karras)"},
        {"t1", deis::grid_kind::power_t, 1.0, "uniform in t"},
    };
    return grids;
}

// A solver built for one grid: how to run it and its actual cost.
struct prepared_solver {
    std::function<deis::sample_result(deis::state<double>&)> run;
    int steps = 0;
    int nfe = 0;
};

template <class Schedule, class Net>
prepared_solver prepare(const solver_spec& spec, const Schedule& sch, std::vector<double> grid, const Net& net) {
    if (spec.multistep || spec.tableau.empty()) {
        const deis::multistep_options opt = spec.multistep ? *spec.multistep : deis::recommended_options(sch, grid);
        auto solver = std::make_shared<const deis::multistep_solver>(sch, std::move(grid), opt);
        return {[solver, &net](deis::state<double>& x) { return solver->sample(net, x); }, solver->steps(),
                solver->nfe()};
    }
    return deis::with_tableau(spec.tableau, [&](auto t) -> prepared_solver {
        using solver_type = deis::rk_solver<decltype(t)>;
        auto solver = std::make_shared<const solver_type>(sch, std::move(grid), deis::rk_options{});
        return {[solver, &net](deis::state<double>& x) { return solver->sample(net, x); }, solver->steps(),
                solver->nfe()};
    });
}

// ---- The problems -----------------------------------------------------------------------------


// The 16-D mixture of 5 components, drawn from std::mt19937_64 with seed 16 (the same on
// every platform: raw 64-bit outputs u mapped to [0, 1) by (u >> 11) * 2^-53, no library
// distribution): for k = 0..4 and d = 0..15 in that order, mean mu_k[d] = 6 U - 3; then
// std s_k[d] = 0.2 + 0.4 U; then weight w_k = 0.5 + U (normalised).
deis::gaussian_mixture gmm16d_mixture() {
    const int D = 16, K = 5;
    std::mt19937_64 gen(16);
    auto uniform = [&gen] { return double(gen() >> 11) * 0x1.0p-53; };
    Eigen::MatrixXd mu(D, K), s(D, K);
    Eigen::VectorXd w(K);
    for (int k = 0; k < K; ++k)
        for (int d = 0; d < D; ++d) mu(d, k) = 6.0 * uniform() - 3.0;
    for (int k = 0; k < K; ++k)
        for (int d = 0; d < D; ++d) s(d, k) = 0.2 + 0.4 * uniform();
    for (int k = 0; k < K; ++k) w[k] = 0.5 + uniform();
    return deis::gaussian_mixture(w, mu, s);
}

// x_T ~ N(0, scale^2 I): D x n, column by column, from std::mt19937_64(seed) and
// std::normal_distribution<double>.
Eigen::MatrixXd draw_noise(Eigen::Index D, Eigen::Index n, std::uint64_t seed, double scale) {
    std::mt19937_64 gen(seed);
    std::normal_distribution<double> normal(0.0, 1.0);
    Eigen::MatrixXd x(D, n);
    for (Eigen::Index j = 0; j < n; ++j)
        for (Eigen::Index d = 0; d < D; ++d) x(d, j) = scale * normal(gen);
    return x;
}

struct settings {
    std::string case_name = "ring2d";
    std::string mixture_file;
    std::vector<int> nfe = {5, 6, 8, 10, 12, 15, 20, 30, 50};
    long samples = 1000;
    std::uint64_t seed = 2022;
    std::string out_dir = "bench-out";
    std::vector<std::string> solvers, grids;
    double ref_tol = 1e-12;
    long ref_block = 100;
    std::string check_dir;
    bool samples_given = false;
};

// ---- Progress on stderr ------------------------------------------------------------------

// A progress bar on stderr, drawn only once the phase has run for more than a second (so
// quick runs stay quiet); on a terminal it redraws in place, otherwise it prints a line at
// every 10%.
class progress {
public:
    progress(std::string label, long total)
        : label_(std::move(label)), total_(std::max(total, 1L)), t0_(clock_type::now()), tty_(isatty(2) != 0) {}
    ~progress() { finish(); }
    progress(const progress&) = delete;
    progress& operator=(const progress&) = delete;

    void update(long done) {
        done_ = done;
        const double el = seconds_since(t0_);
        if (el < 1.0) return;
        if (tty_) {
            if (el - last_draw_ < 0.1 && done < total_) return;
            last_draw_ = el;
            draw(el);
        } else {
            const long decile = 10 * done / total_;
            if (decile <= last_decile_) return;
            last_decile_ = decile;
            std::fprintf(stderr, "%s: %ld%% (%ld/%ld), %.1f s\n", label_.c_str(), 10 * decile, done, total_, el);
        }
        shown_ = true;
    }

    void finish() {
        if (finished_) return;
        finished_ = true;
        if (shown_ && tty_) {
            draw(seconds_since(t0_));
            std::fputc('\n', stderr);
        }
    }

private:
    void draw(double el) {
        const int width = 30;
        const int fill = int(width * done_ / total_);
        const double eta = done_ > 0 ? el * double(total_ - done_) / double(done_) : 0.0;
        std::fprintf(stderr, "\r%s [%s%s] %ld/%ld  %.1f s, about %.0f s left ", label_.c_str(),
                     std::string(std::size_t(fill), '#').c_str(), std::string(std::size_t(width - fill), '.').c_str(),
                     done_, total_, el, eta);
        std::fflush(stderr);
    }

    std::string label_;
    long total_, done_ = 0;
    clock_type::time_point t0_;
    bool tty_;
    bool shown_ = false, finished_ = false;
    double last_draw_ = -1.0;
    long last_decile_ = 0;
};

// ---- Errors ------------------------------------------------------------------------------------

struct error_stats {
    double median = NAN, rms = NAN, max = NAN;
    long mode_switches = 0;
};

double median_of(std::vector<double> v) {
    if (v.empty()) return NAN;
    const std::size_t n = v.size(), m = n / 2;
    std::nth_element(v.begin(), v.begin() + std::ptrdiff_t(m), v.end());
    const double upper = v[m];
    if (n % 2 == 1) return upper;
    const double lower = *std::max_element(v.begin(), v.begin() + std::ptrdiff_t(m));
    return 0.5 * (lower + upper);  // the mean of the two middle values, as numpy.median
}

// e_i = ||x_i - ref_i|| / sqrt(D); rms = sqrt(mean e_i^2); mode switches: samples whose most
// likely component differs from their reference's.
error_stats measure(const Eigen::MatrixXd& x, const Eigen::MatrixXd& ref, const std::vector<Eigen::Index>& ref_comp,
                    const deis::gaussian_mixture& mix) {
    error_stats st;
    const double sd = std::sqrt(double(x.rows()));
    std::vector<double> e(std::size_t(x.cols()));
    double sq = 0.0;
    for (Eigen::Index j = 0; j < x.cols(); ++j) {
        const double ej = (x.col(j) - ref.col(j)).norm() / sd;
        e[std::size_t(j)] = ej;
        sq += ej * ej;
        if (mix.most_likely_component(x.col(j)) != ref_comp[std::size_t(j)]) ++st.mode_switches;
    }
    st.rms = std::sqrt(sq / double(x.cols()));
    st.max = *std::max_element(e.begin(), e.end());
    st.median = median_of(std::move(e));
    return st;
}

struct run_record {
    std::string solver, family, grid;
    int budget = 0, nfe = 0, steps = 0;
    std::string status = "ok";  // ok, or why the run has no numbers
    error_stats err;
    bool ok() const { return status == "ok"; }
};

// ---- Formatting ------------------------------------------------------------------------------

std::string sci(double v, int digits = 2) {
    if (!std::isfinite(v)) return "-";
    std::ostringstream os;
    os << std::scientific << std::setprecision(digits) << v;
    return os.str();
}

bool matches_any(const std::string& name, const std::vector<std::string>& patterns) {
    if (patterns.empty()) return true;
    for (const auto& p : patterns)
        if (fnmatch(p.c_str(), name.c_str(), 0) == 0) return true;
    return false;
}

// Keeps the entries whose name matches a pattern; every pattern must match something.
template <class T>
std::vector<T> filter(const std::vector<T>& all, const std::vector<std::string>& patterns, const char* what) {
    std::vector<T> out;
    for (const auto& e : all)
        if (matches_any(e.name, patterns)) out.push_back(e);
    for (const auto& p : patterns) {
        bool hit = false;
        for (const auto& e : all) hit = hit || fnmatch(p.c_str(), e.name.c_str(), 0) == 0;
        if (!hit) {
            std::string known;
            for (const auto& e : all) known += (known.empty() ? "" : ", ") + e.name;
            throw std::runtime_error(std::string("--") + what + ": '" + p + "' matches nothing (known: " + known + ")");
        }
    }
    return out;
}

std::string shell_quote(const std::string& s) {
    std::string q = "'";
    for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return q + "'";
}

// ---- The report ------------------------------------------------------------------------------

struct problem_info {
    std::string title;             // one line
    std::vector<std::string> lines;  // description, bullet points
};

// geometric mean of the median errors over the budgets where the run succeeded (lower is better)
double score(const std::vector<run_record>& rs, const std::string& solver, const std::string& grid) {
    double s = 0.0;
    int n = 0;
    for (const auto& r : rs)
        if (r.solver == solver && r.grid == grid && r.ok() && r.err.median > 0.0) {
            s += std::log(r.err.median);
            ++n;
        }
    return n ? s / n : INFINITY;
}

std::string best_grid(const std::vector<run_record>& rs, const std::string& solver,
                      const std::vector<grid_spec>& grids) {
    std::string best;
    double bs = INFINITY;
    for (const auto& g : grids) {
        const double s = score(rs, solver, g.name);
        if (s < bs) {
            bs = s;
            best = g.name;
        }
    }
    return best;
}

const run_record* find(const std::vector<run_record>& rs, const std::string& solver, const std::string& grid,
                       int budget) {
    for (const auto& r : rs)
        if (r.solver == solver && r.grid == grid && r.budget == budget) return &r;
    return nullptr;
}

std::string markdown_report(const problem_info& info, const std::vector<run_record>& rs,
                            const std::vector<solver_spec>& solvers, const std::vector<grid_spec>& grids,
                            const std::vector<int>& budgets) {
    std::ostringstream md;
    md << "# deis-bench: " << info.title << "\n\n";
    for (const auto& l : info.lines) md << "- " << l << "\n";
    md << "\nCells: the error at each NFE budget (columns); a Runge-Kutta method with s stages runs "
          "floor(NFE/s) steps, and `@n` marks a cell whose actual NFE n is below the budget "
          "(`-`: fewer than one step, or the run failed). e_i = ||x_i - x_ref_i|| / sqrt(D).\n";

    auto header = [&](std::ostringstream& o) {
        o << "| solver |";
        for (int b : budgets) o << ' ' << b << " |";
        o << "\n|---|";
        for (std::size_t i = 0; i < budgets.size(); ++i) o << "---:|";
        o << '\n';
    };
    auto cell = [](const run_record* r, const std::string& v) {
        if (!r || !r->ok()) return std::string("-");
        return r->nfe != r->budget ? v + " @" + std::to_string(r->nfe) : v;
    };

    // best per budget
    md << "\n## Best median error per NFE budget (over solvers and grids)\n\n"
          "| NFE | solver | grid | median | RMS | mode switches |\n|---:|---|---|---:|---:|---:|\n";
    for (int b : budgets) {
        const run_record* best = nullptr;
        for (const auto& r : rs)
            if (r.budget == b && r.ok() && r.nfe == b && (!best || r.err.median < best->err.median)) best = &r;
        if (best)
            md << "| " << b << " | " << best->solver << " | " << best->grid << " | " << sci(best->err.median) << " | "
               << sci(best->err.rms) << " | " << best->err.mode_switches << " |\n";
    }

    // each solver on its best grid, as in nfe_vs_error.png
    md << "\n## Median error, each solver on its best grid (as in nfe_vs_error.png)\n\n"
          "Best grid: the lowest geometric mean of the median error over the NFE budgets.\n\n| solver | grid |";
    for (int b : budgets) md << ' ' << b << " |";
    md << "\n|---|---|";
    for (std::size_t i = 0; i < budgets.size(); ++i) md << "---:|";
    md << '\n';
    for (const auto& s : solvers) {
        const std::string g = best_grid(rs, s.name, grids);
        if (g.empty()) continue;
        md << "| " << s.name << " | " << g << " |";
        for (int b : budgets) {
            const run_record* r = find(rs, s.name, g, b);
            md << ' ' << cell(r, r && r->ok() ? sci(r->err.median) : "") << " |";
        }
        md << '\n';
    }

    for (const auto& g : grids) {
        md << "\n## Grid " << g.name << ": " << g.description << "\n";
        struct metric {
            const char* title;
            std::function<std::string(const run_record&)> value;
        };
        const metric metrics[] = {
            {"Median error", [](const run_record& r) { return sci(r.err.median); }},
            {"RMS error", [](const run_record& r) { return sci(r.err.rms); }},
            {"Samples ending in another mixture component than the reference",
             [](const run_record& r) { return std::to_string(r.err.mode_switches); }},
        };
        for (const auto& m : metrics) {
            md << "\n### " << m.title << " (" << g.name << ")\n\n";
            header(md);
            for (const auto& s : solvers) {
                md << "| " << s.name << " |";
                for (int b : budgets) {
                    const run_record* r = find(rs, s.name, g.name, b);
                    md << ' ' << cell(r, r && r->ok() ? m.value(*r) : "") << " |";
                }
                md << '\n';
            }
        }
    }
    return md.str();
}

void write_csv(const std::string& path, const std::string& case_name, const std::vector<run_record>& rs) {
    std::ofstream out(path);
    if (!out) throw std::runtime_error(path + ": cannot open for writing");
    out << "case,solver,family,grid,nfe_budget,nfe,steps,status,median_err,rms_error,max_err,n_mode_switch\n";
    out << std::scientific << std::setprecision(6);
    for (const auto& r : rs) {
        out << case_name << ',' << r.solver << ',' << r.family << ',' << r.grid << ',' << r.budget << ',' << r.nfe
            << ',' << r.steps << ',' << r.status << ',';
        if (r.ok())
            out << r.err.median << ',' << r.err.rms << ',' << r.err.max << ',' << r.err.mode_switches << '\n';
        else
            out << ",,,\n";
    }
    if (!out) throw std::runtime_error(path + ": write failed");
}

// One PNG: a 2 x 2 panel per solver family, median error versus actual NFE, log-log; one
// curve per solver, on the given grid or (grid empty) on each solver's best grid.
void gnuplot_figure(std::ostringstream& gp, int& block, const std::string& png, const std::string& title,
                    const std::vector<run_record>& rs, const std::vector<solver_spec>& solvers,
                    const std::vector<grid_spec>& grids, const std::string& grid, double y_clip) {
    static const char* colors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e",
                                   "#9467bd", "#8c564b", "#e377c2", "#17becf"};
    std::vector<std::string> families;
    for (const auto& f : family_order)
        for (const auto& s : solvers)
            if (s.family == f) {
                families.push_back(f);
                break;
            }
    if (families.empty()) return;

    // the data, one block per curve
    struct curve {
        std::string label;
        int block;
    };
    std::map<std::string, std::vector<curve>> curves;
    double ymin = INFINITY, ymax = 0.0, xmin = INFINITY, xmax = 0.0;
    for (const auto& f : families) {
        for (const auto& s : solvers) {
            if (s.family != f) continue;
            const std::string g = grid.empty() ? best_grid(rs, s.name, grids) : grid;
            if (g.empty()) continue;
            std::vector<std::pair<int, double>> pts;
            for (const auto& r : rs)
                if (r.solver == s.name && r.grid == g && r.ok() && r.err.median > 0.0)
                    pts.emplace_back(r.nfe, r.err.median);
            if (pts.empty()) continue;
            std::sort(pts.begin(), pts.end());
            gp << "$d" << block << " << EOD\n";
            for (const auto& [n, e] : pts) {
                gp << n << ' ' << std::setprecision(8) << e << '\n';
                ymin = std::min(ymin, e);
                ymax = std::max(ymax, e);
                xmin = std::min(xmin, double(n));
                xmax = std::max(xmax, double(n));
            }
            gp << "EOD\n";
            curves[f].push_back({grid.empty() ? s.name + " (" + g + ")" : s.name, block++});
        }
    }
    if (curves.empty()) return;
    // an error above the size of the data only means "diverged": clip the axis there
    const double ylo = std::pow(10.0, std::floor(std::log10(ymin)));
    const double yhi = std::min(y_clip, std::pow(10.0, std::ceil(std::log10(ymax))));

    std::string plain = title;  // enhanced text treats these as markup
    for (char& c : plain)
        if (std::string("_^{}@&~'\\").find(c) != std::string::npos) c = ' ';
    gp << "set output '" << png << "'\n";
    gp << "set multiplot layout 2,2 title '" << plain << "' font ',15'\n";
    gp << "set xrange [" << xmin * 0.9 << ':' << xmax * 1.1 << "]\nset yrange [" << ylo << ':' << yhi << "]\n";
    for (const auto& f : families) {
        gp << "set title '" << family_title.at(f) << "'\n";
        const auto& cs = curves[f];
        if (cs.empty()) {
            gp << "plot NaN notitle\n";
            continue;
        }
        gp << "plot ";
        for (std::size_t i = 0; i < cs.size(); ++i) {
            gp << (i ? ", \\\n     " : "") << "$d" << cs[i].block << " using 1:2 with linespoints lw 2 pt "
               << (i % 7) + 4 << " ps 1.2 lc rgb '" << colors[i % 8] << "' dt " << (i < 8 ? 1 : 2) << " title '"
               << cs[i].label << "' noenhanced";
        }
        gp << '\n';
    }
    gp << "unset multiplot\n";
}

// Writes plot.gp into out_dir and runs gnuplot there; returns the PNGs written (none, with a
// note on stderr, when gnuplot is missing or fails).
std::vector<std::string> plot(const std::string& out_dir, const std::string& case_title,
                              const std::vector<run_record>& rs, const std::vector<solver_spec>& solvers,
                              const std::vector<grid_spec>& grids, double y_clip) {
    std::ostringstream body;
    body << "# written by deis-bench: median error versus NFE\n"
            "set terminal pngcairo size 1500,1100 font ',11' enhanced\n"
            "set logscale xy\nset grid xtics ytics mxtics mytics lc rgb '#dddddd'\n"
            "set xlabel 'NFE (network evaluations)'\nset ylabel 'median error'\n"
            "set format y '10^{%L}'\nset key bottom left font ',10'\n"
            "set xtics (1, 2, 3, 4, 5, 6, 8, 10, 12, 15, 20, 30, 50, 100, 200, 500)\n";
    int block = 0;
    std::vector<std::string> pngs;
    pngs.push_back("nfe_vs_error.png");
    gnuplot_figure(body, block, pngs.back(), case_title + ": median error vs NFE, each solver on its best grid", rs,
                   solvers, grids, "", y_clip);
    for (const auto& g : grids) {
        pngs.push_back("nfe_vs_error_" + g.name + ".png");
        gnuplot_figure(body, block, pngs.back(), case_title + ": median error vs NFE on grid " + g.name, rs, solvers,
                       grids, g.name, y_clip);
    }
    const std::string script = (fs::path(out_dir) / "plot.gp").string();
    {
        std::ofstream out(script);
        out << body.str();
        if (!out) throw std::runtime_error(script + ": cannot write");
    }
    if (std::system("command -v gnuplot >/dev/null 2>&1") != 0) {
        std::cerr << "deis-bench: gnuplot not found, no plot drawn (the data is in results.csv; install gnuplot and "
                     "run 'gnuplot plot.gp' in "
                  << out_dir << ")\n";
        return {};
    }
    const std::string cmd = "cd " + shell_quote(out_dir) + " && gnuplot plot.gp";
    if (std::system(cmd.c_str()) != 0) {
        std::cerr << "deis-bench: gnuplot failed on " << script << "; no plot drawn\n";
        return {};
    }
    return pngs;
}

// ---- The check against the reference data (tests/data) -------------------------------------------------

struct reference_row {
    std::string impl, method, grid;
    int order = 0, steps = 0, nfe = 0;
    double rms = NAN, median = NAN, max = NAN;
    long switches = 0;
};

std::vector<reference_row> read_reference_results(const std::string& path) {
    std::ifstream in(path);
    if (!in) throw std::runtime_error(path + ": cannot open");
    std::vector<reference_row> rows;
    std::string line;
    std::getline(in, line);  // header
    while (std::getline(in, line)) {
        if (deis_tools::trim(line).empty()) continue;
        const auto c = deis_tools::split_csv_line(line);
        if (c.size() != 10) throw std::runtime_error(path + ": expected 10 columns in '" + line + "'");
        reference_row r;
        r.impl = c[0];
        r.method = c[1];
        r.order = std::stoi(c[2]);
        r.grid = c[3];
        r.steps = std::stoi(c[4]);
        r.nfe = std::stoi(c[5]);
        r.rms = std::stod(c[6]);
        r.median = std::stod(c[7]);
        r.max = std::stod(c[8]);
        r.switches = std::stol(c[9]);
        rows.push_back(r);
    }
    return rows;
}

// Our name for a configuration of gmm2d_results.csv, or "" when we have none: tAB/rhoAB of
// the official code with exact coefficients, and its Runge-Kutta and iPNDM samplers.
std::string our_solver(const reference_row& r) {
    if (r.impl == "deis-exactcoef" && r.method == "t_ab") return r.order == 0 ? "ddim" : "tab" + std::to_string(r.order);
    if (r.impl == "deis-exactcoef" && r.method == "rho_ab")
        return r.order == 0 ? "ddim" : "rhoab" + std::to_string(r.order);
    if (r.impl == "deis-official" && r.method == "ipndm") return "ipndm";
    if (r.impl == "deis-official" && r.method == "rho_rk:2heun") return "heun2";
    if (r.impl == "deis-official" && r.method == "rho_rk:3kutta") return "kutta3";
    if (r.impl == "deis-official" && r.method == "rho_rk:4rk") return "rk4";
    return "";
}

// The check passes when our reference solution is within 1e-9 of gmm2d_exact.csv (both
// solve the ODE to ~1e-11), every matched median and RMS error agrees to 1e-5 relative
// (the file prints 7 significant digits, a rounding of <= 5e-7 relative; a reference off
// by 1e-11 moves errors >= 1e-5 by <= 1e-6 relative), and every mode-switch count is equal.
struct check_outcome {
    std::string report;
    bool passed = true;
};

check_outcome check_against_reference(const std::string& dir, const Eigen::MatrixXd& ref,
                                      const std::vector<run_record>& rs) {
    check_outcome out;
    std::ostringstream md;
    md << "\n# Check against " << dir << "\n\n";
    const Eigen::MatrixXd exact = deis_tools::read_samples((fs::path(dir) / "gmm2d_exact.csv").string());
    if (exact.rows() != ref.rows() || exact.cols() != ref.cols())
        throw std::runtime_error("gmm2d_exact.csv has shape " + std::to_string(exact.rows()) + "x" +
                                 std::to_string(exact.cols()) + ", our reference " + std::to_string(ref.rows()) +
                                 "x" + std::to_string(ref.cols()));
    const double maxdiff = (ref - exact).cwiseAbs().maxCoeff();
    const double rmsdiff = std::sqrt((ref - exact).squaredNorm() / double(ref.size()));
    md << "Our reference solution versus gmm2d_exact.csv (DOP853, rtol = atol = 1e-13): max |diff| = "
       << sci(maxdiff) << ", RMS diff = " << sci(rmsdiff) << " (over " << ref.cols() << " samples x " << ref.rows()
       << " coordinates).\n\n";

    const auto rows = read_reference_results((fs::path(dir) / "gmm2d_results.csv").string());
    md << "Our runs versus gmm2d_results.csv, same method, grid and number of steps (tAB/rhoAB: the official "
          "sampler with exact coefficients; iPNDM and rhoRK: the official sampler). Relative differences of the "
          "median and RMS errors:\n\n"
          "| solver | theirs | grid | steps | NFE | our median | their median | rel. diff | our RMS | their RMS | "
          "rel. diff | our / their mode switches |\n|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n";
    double worst_median = 0.0, worst_rms = 0.0;
    int matched = 0;
    bool switch_mismatch = false;
    for (const auto& row : rows) {
        const std::string name = our_solver(row);
        if (name.empty()) continue;
        for (const auto& r : rs) {
            if (r.solver != name || r.grid != row.grid || r.steps != row.steps || !r.ok()) continue;
            const double dm = std::abs(r.err.median - row.median) / row.median;
            const double dr = std::abs(r.err.rms - row.rms) / row.rms;
            worst_median = std::max(worst_median, dm);
            worst_rms = std::max(worst_rms, dr);
            switch_mismatch = switch_mismatch || r.err.mode_switches != row.switches;
            ++matched;
            md << "| " << name << " | " << row.method << " o" << row.order << " | " << r.grid << " | " << r.steps << " | " << r.nfe << " | " << sci(r.err.median, 4)
               << " | " << sci(row.median, 4) << " | " << sci(dm, 1) << " | " << sci(r.err.rms, 4) << " | "
               << sci(row.rms, 4) << " | " << sci(dr, 1) << " | " << r.err.mode_switches << " / " << row.switches
               << " |\n";
            break;
        }
    }
    md << "\n" << matched << " configurations matched; largest relative difference: median " << sci(worst_median, 1)
       << ", RMS " << sci(worst_rms, 1)
       << " (gmm2d_results.csv prints 7 significant digits, so about 1e-6 is agreement).\n";
    std::string why;
    if (!(maxdiff < 1e-9)) why += " reference solution differs from gmm2d_exact.csv by " + sci(maxdiff) + " (limit 1e-9);";
    if (!(worst_median < 1e-5 && worst_rms < 1e-5)) why += " errors differ by more than 1e-5 relative;";
    if (switch_mismatch) why += " mode-switch counts differ;";
    if (matched == 0) why += " no configuration matched;";
    out.passed = why.empty();
    md << "\nCheck " << (out.passed ? "PASSED" : "FAILED:" + why) << "\n";
    out.report = md.str();
    return out;
}

// ---- The run ------------------------------------------------------------------------------------

template <class Schedule>
int run(const settings& cfg, const Schedule& sch, const deis::gaussian_mixture& mix, double t_max, double t_end,
        Eigen::MatrixXd x_T, problem_info info) {
    const auto t_start = clock_type::now();
    const auto solvers = filter(solver_table(), cfg.solvers, "solvers");
    const auto grids = filter(grid_table(), cfg.grids, "grids");
    const deis::gmm_eps<Schedule> net(mix, sch);
    const Eigen::Index D = x_T.rows(), n = x_T.cols();

    // the reference solution, and the same at a tolerance ten times tighter
    auto reference = [&](double tol, const std::string& label) {
        Eigen::MatrixXd x = x_T;
        deis::reference_options opt;
        opt.atol = opt.rtol = tol;
        opt.block_columns = cfg.ref_block;
        progress bar(label, n);
        long nfe = 0;
        for (Eigen::Index c0 = 0; c0 < n; c0 += cfg.ref_block) {
            const Eigen::Index cols = std::min<Eigen::Index>(cfg.ref_block, n - c0);
            deis::state<double> block = x.middleCols(c0, cols);
            const auto r = deis::reference_solution(sch, net, block, t_max, t_end, opt);
            if (!r) throw std::runtime_error(std::string("reference solution failed: ") + deis::to_string(r.status));
            x.middleCols(c0, cols) = block;
            nfe += r.nfe;
            bar.update(c0 + cols);
        }
        return std::make_pair(x, nfe);
    };
    auto t0 = clock_type::now();
    const auto [ref, ref_nfe] = reference(cfg.ref_tol, "reference");
    const double ref_seconds = seconds_since(t0);
    t0 = clock_type::now();
    const Eigen::MatrixXd ref_tight = reference(cfg.ref_tol / 10, "reference check").first;
    const double ref_tight_seconds = seconds_since(t0);
    double ref_change = 0.0;
    for (Eigen::Index j = 0; j < n; ++j)
        ref_change = std::max(ref_change, (ref.col(j) - ref_tight.col(j)).norm() / std::sqrt(double(D)));
    std::vector<Eigen::Index> ref_comp(static_cast<std::size_t>(n));
    for (Eigen::Index j = 0; j < n; ++j) ref_comp[std::size_t(j)] = mix.most_likely_component(ref.col(j));

    {
        std::ostringstream l;
        l << "reference solution: Boost.Odeint Runge-Kutta-Fehlberg 7(8) on dy/drho = eps(alpha y, t(rho)), "
          << "atol = rtol = " << sci(cfg.ref_tol, 0) << " on y = x/alpha, " << cfg.ref_block
          << " columns per step-size control, " << ref_nfe << " network calls, " << std::fixed << std::setprecision(1)
          << ref_seconds << " s; at tolerance " << sci(cfg.ref_tol / 10, 0)
          << " it changes by at most " << sci(ref_change) << " (max e_i; " << ref_tight_seconds << " s)";
        info.lines.push_back(l.str());
    }

    // the sweep
    std::vector<run_record> rs;
    const long total = long(grids.size() * solvers.size() * cfg.nfe.size());
    t0 = clock_type::now();
    progress bar("solvers", total);
    long done = 0;
    for (const auto& g : grids) {
        for (const auto& s : solvers) {
            for (int budget : cfg.nfe) {
                run_record rec;
                rec.solver = s.name;
                rec.family = s.family;
                rec.grid = g.name;
                rec.budget = budget;
                const int steps = budget / s.stages;
                if (steps < 1) {
                    rec.status = "budget below one step";
                } else {
                    try {
                        const auto grid = deis::make_grid(sch, g.kind, steps, t_max, t_end, g.power);
                        const prepared_solver p = prepare(s, sch, grid, net);
                        Eigen::MatrixXd x = x_T;
                        const deis::sample_result r = p.run(x);
                        rec.steps = r.steps;
                        rec.nfe = r.nfe;
                        if (r.nfe != p.nfe && r.ok())
                            throw std::logic_error(s.name + ": made " + std::to_string(r.nfe) +
                                                   " network calls, nfe() says " + std::to_string(p.nfe));
                        if (r.ok())
                            rec.err = measure(x, ref, ref_comp, mix);
                        else
                            rec.status = deis::to_string(r.status);
                    } catch (const std::invalid_argument& e) {
                        rec.status = std::string("rejected: ") + e.what();
                    }
                }
                rs.push_back(rec);
                bar.update(++done);
            }
        }
    }
    bar.finish();
    const double sweep_seconds = seconds_since(t0);
    {
        std::ostringstream l;
        l << rs.size() << " runs (" << solvers.size() << " solvers x " << grids.size() << " grids x " << cfg.nfe.size()
          << " NFE budgets) in " << std::fixed << std::setprecision(1) << sweep_seconds << " s";
        info.lines.push_back(l.str());
    }
    for (const auto& r : rs)
        if (!r.ok() && r.status != "budget below one step")
            std::cerr << "deis-bench: " << r.solver << " on " << r.grid << " at NFE " << r.budget << ": " << r.status
                      << '\n';

    // outputs
    fs::create_directories(cfg.out_dir);
    std::string report = markdown_report(info, rs, solvers, grids, cfg.nfe);
    bool check_passed = true;
    if (!cfg.check_dir.empty()) {
        const check_outcome c = check_against_reference(cfg.check_dir, ref, rs);
        report += c.report;
        check_passed = c.passed;
    }
    std::cout << report << std::flush;
    {
        const std::string path = (fs::path(cfg.out_dir) / "table.md").string();
        std::ofstream out(path);
        out << report;
        if (!out) throw std::runtime_error(path + ": cannot write");
    }
    write_csv((fs::path(cfg.out_dir) / "results.csv").string(), cfg.case_name, rs);
    // the y axis stops at the decade above the RMS size of the data, sqrt(mean ||x_ref||^2 / D)
    const double data_scale = std::sqrt(ref.squaredNorm() / double(ref.size()));
    const auto pngs =
        plot(cfg.out_dir, info.title, rs, solvers, grids, std::pow(10.0, std::ceil(std::log10(data_scale))));
    std::cerr << "deis-bench: wrote " << (fs::path(cfg.out_dir) / "table.md").string() << ", results.csv";
    for (const auto& p : pngs) std::cerr << ", " << p;
    std::cerr << " in " << cfg.out_dir << " (" << std::fixed << std::setprecision(1) << seconds_since(t_start)
              << " s)\n";
    if (!check_passed) {
        std::cerr << "deis-bench: the check against " << cfg.check_dir << " FAILED (see the end of table.md)\n";
        return 2;
    }
    return 0;
}

std::string describe_mixture(const deis::gaussian_mixture& m) {
    std::ostringstream os;
    os << m.components() << " components in " << m.dim() << " dimensions";
    return os.str();
}

int bench_main(int argc, char** argv) {
    settings cfg;
    bool list = false;
    CLI::App app{"deis-bench: error versus NFE of every deis solver on a Gaussian mixture with exact eps"};
    app.add_option("--case", cfg.case_name,
                   "ring2d: 8 Gaussians on a circle of radius 4, std 0.3, VP linear 0.1/20, T = 1, t_end = 1e-3; "
                   "gmm16d: 16-D mixture of 5 components (seeded), same schedule; "
                   "ve: the ring under VE 0.01/50, t from 1 to 0")
        ->check(CLI::IsMember({"ring2d", "gmm16d", "ve"}))
        ->capture_default_str();
    app.add_option("--mixture", cfg.mixture_file,
                   "a mixture file (.json, else CSV as gmm2d_components.csv) replacing the case's mixture; the case "
                   "still chooses the schedule")
        ->check(CLI::ExistingFile);
    app.add_option("--nfe", cfg.nfe, "NFE budgets, comma-separated")->delimiter(',')->capture_default_str();
    auto* samples = app.add_option("--samples", cfg.samples, "number of samples x_T")->capture_default_str();
    app.add_option("--seed", cfg.seed, "seed of x_T (std::mt19937_64 + std::normal_distribution)")
        ->capture_default_str();
    app.add_option("--out-dir", cfg.out_dir, "where results.csv, table.md, plot.gp and the PNGs go")
        ->capture_default_str();
    app.add_option("--solvers", cfg.solvers, "solvers to run: names or shell patterns, comma-separated (see --list)")
        ->delimiter(',');
    app.add_option("--grids", cfg.grids, "grids to use: names or shell patterns, comma-separated (see --list)")
        ->delimiter(',');
    app.add_option("--ref-tol", cfg.ref_tol, "atol = rtol of the reference solution (checked at a tenth of it)")
        ->capture_default_str();
    app.add_option("--ref-block", cfg.ref_block, "samples per step-size control of the reference integrator")
        ->capture_default_str();
    app.add_option("--check-reference", cfg.check_dir,
                   "directory of the reference data (tests/data): run on its gmm2d_xT.csv and compare with gmm2d_exact.csv and "
                   "gmm2d_results.csv (case ring2d only)")
        ->check(CLI::ExistingDirectory);
    app.add_flag("--list", list, "list the solvers and grids and exit");
    CLI11_PARSE(app, argc, argv);
    cfg.samples_given = samples->count() > 0;

    if (list) {
        std::cout << "solvers (name, family, network calls per step):\n";
        for (const auto& s : solver_table()) std::cout << "  " << s.name << "  " << s.family << "  " << s.stages << '\n';
        std::cout << "grids:\n";
        for (const auto& g : grid_table()) std::cout << "  " << g.name << "  " << g.description << '\n';
        return 0;
    }
    for (int b : cfg.nfe)
        if (b < 1) throw std::runtime_error("--nfe: every budget must be >= 1, got " + std::to_string(b));
    if (cfg.nfe.empty()) throw std::runtime_error("--nfe: give at least one budget");
    if (cfg.samples < 1) throw std::runtime_error("--samples must be >= 1, got " + std::to_string(cfg.samples));
    if (cfg.ref_block < 1) throw std::runtime_error("--ref-block must be >= 1");
    if (!(cfg.ref_tol > 0.0)) throw std::runtime_error("--ref-tol must be > 0");
    std::sort(cfg.nfe.begin(), cfg.nfe.end());
    cfg.nfe.erase(std::unique(cfg.nfe.begin(), cfg.nfe.end()), cfg.nfe.end());

    std::optional<deis::gaussian_mixture> mix;
    std::string mix_name;
    if (!cfg.mixture_file.empty()) {
        const bool json = fs::path(cfg.mixture_file).extension() == ".json";
        mix = json ? deis_tools::read_mixture_json(cfg.mixture_file) : deis_tools::read_mixture_csv(cfg.mixture_file);
        mix_name = cfg.mixture_file + " (" + describe_mixture(*mix) + ")";
    } else if (cfg.case_name == "gmm16d") {
        mix = gmm16d_mixture();
        mix_name = "16-D mixture of 5 components: from std::mt19937_64(16), means 6U - 3, stds 0.2 + 0.4U, weights "
                   "0.5 + U (U uniform in [0, 1))";
    } else {
        mix = deis_bench::ring2d_mixture();
        mix_name = "2-D ring: 8 components, mu_k = 4 (cos 2 pi k/8, sin 2 pi k/8), std 0.3, equal weights";
    }

    problem_info info;
    info.title = cfg.mixture_file.empty() ? cfg.case_name
                                          : fs::path(cfg.mixture_file).filename().string() +
                                                (cfg.case_name == "ve" ? " (VE schedule)" : " (VP linear schedule)");
    info.lines.push_back("mixture: " + mix_name);

    if (!cfg.check_dir.empty() && (cfg.case_name != "ring2d" || !cfg.mixture_file.empty()))
        throw std::runtime_error("--check-reference needs --case ring2d and no --mixture (the problem of the reference)");

    if (cfg.case_name == "ve") {
        const deis::ve sch(0.01, 50.0);
        const Eigen::MatrixXd x_T = draw_noise(mix->dim(), cfg.samples, cfg.seed, sch.sigma_max());
        info.lines.push_back("schedule: VE, sigma_min = 0.01, sigma_max = 50, from t = 1 to t_end = 0 (sigma = 0.01)");
        info.lines.push_back(std::to_string(cfg.samples) + " samples x_T ~ N(0, 50^2 I), seed " +
                             std::to_string(cfg.seed));
        return run(cfg, sch, *mix, 1.0, 0.0, x_T, info);
    }
    const deis::vp_linear sch(0.1, 20.0, 1.0);
    Eigen::MatrixXd x_T;
    if (!cfg.check_dir.empty()) {
        x_T = deis_tools::read_samples((fs::path(cfg.check_dir) / "gmm2d_xT.csv").string());
        if (cfg.samples_given) std::cerr << "deis-bench: --samples ignored: the check runs on gmm2d_xT.csv\n";
        info.lines.push_back(std::to_string(x_T.cols()) + " samples x_T from " + cfg.check_dir + "/gmm2d_xT.csv");
    } else {
        x_T = draw_noise(mix->dim(), cfg.samples, cfg.seed, 1.0);
        info.lines.push_back(std::to_string(cfg.samples) + " samples x_T ~ N(0, I), seed " + std::to_string(cfg.seed));
    }
    info.lines.push_back("schedule: VP linear, beta_min = 0.1, beta_max = 20, from T = 1 to t_end = 1e-3");
    return run(cfg, sch, *mix, 1.0, 1e-3, x_T, info);
}

}  // namespace

int main(int argc, char** argv) {
    try {
        return bench_main(argc, argv);
    } catch (const std::exception& e) {
        std::cerr << "deis-bench: " << e.what() << '\n';
        return 1;
    }
}
