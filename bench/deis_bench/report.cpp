#include "report.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <functional>
#include <iomanip>
#include <iostream>
#include <sstream>
#include <stdexcept>

#include "plot.hpp"
#include "support/atomic_file.hpp"
#include "support/csv_io.hpp"
#include "support/input_file.hpp"

namespace deis_bench {

namespace fs = std::filesystem;

std::string sci(double v, int digits) {
    if (!std::isfinite(v)) return "-";
    std::ostringstream os;
    os << std::scientific << std::setprecision(digits) << v;
    return os.str();
}

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

const run_record* find_run(const std::vector<run_record>& rs, const std::string& solver, const std::string& grid,
                           int budget) {
    for (const auto& r : rs)
        if (r.solver == solver && r.grid == grid && r.budget == budget) return &r;
    return nullptr;
}

std::string switches_text(long n) { return n < 0 ? "n/a" : std::to_string(n); }

namespace {

// The lowest median error at the full budget b among the runs that pass keep(r); NaN when none.
template <class Keep>
double best_median(const std::vector<run_record>& rs, int b, Keep keep) {
    double best = NAN;
    for (const auto& r : rs)
        if (r.budget == b && r.ok() && r.nfe == b && keep(r) && !(r.err.median >= best)) best = r.err.median;
    return best;
}

// The baseline on every grid, the recommended configuration on every grid, and per budget how
// many times smaller than the baseline's best error (over the grids) theirs are.
std::string baseline_section(const std::string& baseline, const std::vector<run_record>& rs,
                             const std::vector<grid_spec>& grids, const std::vector<int>& budgets) {
    std::ostringstream md;
    md << "\n## Against the baseline, " << baseline << "\n\nMedian errors; the ratios divide the baseline's best "
          "median over the grids by the other's best (larger is better; only runs at the full budget).\n\n"
          "| row | grid |";
    for (int b : budgets) md << ' ' << b << " |";
    md << "\n|---|---|";
    for (std::size_t i = 0; i < budgets.size(); ++i) md << "---:|";
    md << '\n';
    for (const std::string& solver : {baseline, std::string("recommended")})
        for (const auto& g : grids) {
            bool any = false;
            for (const auto& r : rs) any = any || (r.solver == solver && r.grid == g.name && r.ok());
            if (!any) continue;
            md << "| " << solver << " | " << g.name << " |";
            for (int b : budgets) {
                const run_record* r = find_run(rs, solver, g.name, b);
                md << ' ' << (r && r->ok() ? sci(r->err.median) : "-") << " |";
            }
            md << '\n';
        }
    auto ratio_row = [&](const std::string& label, auto keep) {
        md << "| " << label << " | |";
        for (int b : budgets) {
            const double base = best_median(rs, b, [&](const run_record& r) { return r.solver == baseline; });
            const double other = best_median(rs, b, keep);
            std::ostringstream v;
            v << std::fixed << std::setprecision(1) << base / other;
            md << ' ' << (std::isfinite(base / other) ? v.str() : "-") << " |";
        }
        md << '\n';
    };
    ratio_row(baseline + "'s best / recommended's best", [](const run_record& r) { return r.solver == "recommended"; });
    ratio_row(baseline + "'s best / the best of all", [](const run_record&) { return true; });
    return md.str();
}

}  // namespace

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
               << sci(best->err.rms) << " | " << switches_text(best->err.mode_switches) << " |\n";
    }

    if (!info.baseline.empty()) md << baseline_section(info.baseline, rs, grids, budgets);
    if (!info.not_run.empty()) {
        md << "\n## Solvers not run: they cannot start at pure noise (alpha = 0)\n\n| solver | the library's "
              "error |\n|---|---|\n";
        for (const auto& [name, why] : info.not_run) md << "| " << name << " | " << why << " |\n";
    }

    // the recommended configuration (on its own grid) against the best fixed configuration
    {
        md << "\n## Recommended configuration against the best configuration at each NFE\n\n"
              "best: the lowest median error of every solver on every grid at that NFE, the calibrated row "
              "excluded; ratio = row / best (at most 2 is the target of issue 13). `recommended+calibrated`: "
              "deis::optimize_grid from the recommended grid against one calibration reference "
              "(deis::make_calibration_reference) of a batch of its own seed (--calibration-samples), shared by every "
              "budget.\n\n"
              "| row |";
        for (int b : budgets) md << ' ' << b << " |";
        md << "\n|---|";
        for (std::size_t i = 0; i < budgets.size(); ++i) md << "---:|";
        md << '\n';
        std::vector<double> best(budgets.size(), INFINITY);
        std::vector<std::string> best_name(budgets.size());
        for (std::size_t i = 0; i < budgets.size(); ++i)
            for (const auto& r : rs)
                if (r.budget == budgets[i] && r.ok() && r.nfe == budgets[i] && r.solver != "recommended+calibrated" &&
                    r.err.median < best[i]) {
                    best[i] = r.err.median;
                    best_name[i] = r.solver + " (" + r.grid + ")";
                }
        auto row = [&](const std::string& title, const std::string& solver, bool ratio) {
            md << "| " << title << " |";
            for (std::size_t i = 0; i < budgets.size(); ++i) {
                const run_record* r = find_run(rs, solver, "rec", budgets[i]);
                if (!r || !r->ok()) {
                    md << " - |";
                    continue;
                }
                md << ' ' << (ratio ? (std::isfinite(best[i]) ? sci(r->err.median / best[i]) : std::string("-"))
                                    : sci(r->err.median))
                   << " |";
            }
            md << '\n';
        };
        md << "| best |";
        for (double v : best) md << ' ' << sci(v) << " |";
        md << "\n| best is |";
        for (const auto& n : best_name) md << ' ' << n << " |";
        md << '\n';
        row("recommended (rec grid)", "recommended", false);
        row("ratio recommended / best", "recommended", true);
        row("recommended+calibrated", "recommended+calibrated", false);
        row("ratio calibrated / best", "recommended+calibrated", true);
        if (!info.peer_best.empty()) {
            // the peers: recommended (and calibrated) against the best peer where the table has the NFE
            auto peer_row = [&](const std::string& title, const std::string& solver) {
                md << "| " << title << " |";
                for (int b : budgets) {
                    const auto p = info.peer_best.find(b);
                    const run_record* r = solver.empty() ? nullptr : find_run(rs, solver, "rec", b);
                    if (p == info.peer_best.end() || (!solver.empty() && (!r || !r->ok())))
                        md << " - |";
                    else
                        md << ' ' << sci(solver.empty() ? p->second : r->err.median / p->second) << " |";
                }
                md << '\n';
            };
            peer_row("best peer (" + info.peer_source + ")", "");
            peer_row("ratio recommended / best peer", "recommended");
            peer_row("ratio calibrated / best peer", "recommended+calibrated");
            md << "\nbest peer: " << info.peer_note << '\n';
        }
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
            const run_record* r = find_run(rs, s.name, g, b);
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
            if (!info.mixture && m.title[0] == 'S') continue;  // mode switches: n/a
            md << "\n### " << m.title << " (" << g.name << ")\n\n";
            header(md);
            for (const auto& s : solvers) {
                md << "| " << s.name << " |";
                for (int b : budgets) {
                    const run_record* r = find_run(rs, s.name, g.name, b);
                    md << ' ' << cell(r, r && r->ok() ? m.value(*r) : "") << " |";
                }
                md << '\n';
            }
        }
    }
    return md.str();
}

void write_csv(const std::string& path, const std::string& case_name, const std::vector<run_record>& rs) {
    std::ostringstream out;
    out << "case,solver,family,grid,nfe_budget,nfe,steps,status,median_err,rms_error,max_err,n_mode_switch\n";
    out << std::scientific << std::setprecision(6);
    for (const auto& r : rs) {
        out << case_name << ',' << r.solver << ',' << r.family << ',' << r.grid << ',' << r.budget << ',' << r.nfe
            << ',' << r.steps << ',' << r.status << ',';
        if (r.ok())
            out << r.err.median << ',' << r.err.rms << ',' << r.err.max << ',' << switches_text(r.err.mode_switches)
                << '\n';
        else
            out << ",,,\n";
    }
    deis_tools::write_text_file(path, out.str());
}

namespace {

// ---- The check against the reference data (tests/data) -------------------------------------------------

struct reference_row {
    std::string impl, method, grid;
    int order = 0, steps = 0, nfe = 0;
    double rms = NAN, median = NAN, max = NAN;
    long switches = 0;
};

std::vector<reference_row> read_reference_results(const std::string& path) {
    deis_tools::input_file file(path);
    std::istream& in = file.stream();
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
    if (r.impl == "deis-official" && r.method == "rho_rk:2heun") return "rk:heun2";
    if (r.impl == "deis-official" && r.method == "rho_rk:3kutta") return "rk:kutta3";
    if (r.impl == "deis-official" && r.method == "rho_rk:4rk") return "rk:rk4";
    return "";
}

}  // namespace

std::map<int, double> best_peer_medians(const std::string& results_csv) {
    std::map<int, double> best;
    for (const auto& r : read_reference_results(results_csv)) {
        const auto it = best.find(r.nfe);
        if (it == best.end() || r.median < it->second) best[r.nfe] = r.median;
    }
    return best;
}

std::map<int, double> read_peer_medians(const std::string& path) {
    deis_tools::input_file file(path);
    std::istream& in = file.stream();
    std::string line;
    std::getline(in, line);
    const auto head = deis_tools::split_csv_line(line);
    const auto column = [&](const std::string& name) {
        const auto it = std::find_if(head.begin(), head.end(),
                                     [&](const std::string& h) { return deis_tools::trim(h) == name; });
        if (it == head.end()) throw std::runtime_error("--peers " + path + ": no column '" + name + "' in its header");
        return std::size_t(it - head.begin());
    };
    const std::size_t c_nfe = column("nfe"), c_median = column("median_err");
    std::map<int, double> best;
    for (long row = 2; std::getline(in, line); ++row) {
        if (deis_tools::trim(line).empty()) continue;
        const auto c = deis_tools::split_csv_line(line);
        const std::string where = "--peers " + path + ": line " + std::to_string(row) + ": ";
        if (c.size() != head.size()) throw std::runtime_error(where + "expected " + std::to_string(head.size()) + " columns");
        if (deis_tools::trim(c[c_median]).empty()) continue;  // a failed run
        int nfe = 0;
        double median = NAN;
        try {
            nfe = std::stoi(c[c_nfe]);
            median = std::stod(c[c_median]);
        } catch (const std::exception&) {
            throw std::runtime_error(where + "nfe and median_err must be numbers");
        }
        if (!std::isfinite(median)) continue;
        const auto it = best.find(nfe);
        if (it == best.end() || median < it->second) best[nfe] = median;
    }
    if (best.empty()) throw std::runtime_error("--peers " + path + ": no row with a finite median_err");
    return best;
}

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

check_outcome check_flow_against_reference(const std::string& dir, const Eigen::MatrixXd& ref,
                                           const std::vector<run_record>& rs) {
    check_outcome out;
    std::ostringstream md;
    md << "\n# Check against " << dir << " (flow matching)\n\n";
    const Eigen::MatrixXd exact = deis_tools::read_samples((fs::path(dir) / "flow" / "gmm2d_flow_exact.csv").string());
    if (exact.rows() != ref.rows() || exact.cols() != ref.cols())
        throw std::runtime_error("flow/gmm2d_flow_exact.csv has shape " + std::to_string(exact.rows()) + "x" +
                                 std::to_string(exact.cols()) + ", our reference " + std::to_string(ref.rows()) +
                                 "x" + std::to_string(ref.cols()));
    const double maxdiff = (ref - exact).cwiseAbs().maxCoeff();
    md << "Our reference solution versus flow/gmm2d_flow_exact.csv (DOP853 on the exact velocity, rtol = atol = "
          "1e-13, accurate to about 7e-11): max |diff| = "
       << sci(maxdiff) << " (limit 1e-9).\n\n";
    // Euler's median errors on this problem, computed independently of the library (issue 11;
    // tests/test_flow.cpp checks the same numbers). Printed to 4 digits: agreement to 5e-4.
    struct row {
        const char* grid;
        int steps;
        double median;
    };
    const row rows[] = {{"t1", 5, 1.894e-1},   {"t1", 10, 9.530e-2},   {"t1", 20, 4.853e-2},
                        {"t1", 50, 1.956e-2},  {"t1s3", 5, 1.836e-1},  {"t1s3", 10, 7.383e-2},
                        {"t1s3", 20, 4.061e-2}, {"t1s3", 50, 1.690e-2}};
    md << "Euler's median error versus the independent numbers:\n\n| grid | steps | ours | theirs | rel. diff |\n"
          "|---|---:|---:|---:|---:|\n";
    double worst = 0.0;
    int matched = 0;
    for (const row& w : rows)
        for (const auto& r : rs)
            if (r.solver == "euler" && r.grid == w.grid && r.steps == w.steps && r.ok()) {
                const double d = std::abs(r.err.median - w.median) / w.median;
                worst = std::max(worst, d);
                ++matched;
                md << "| " << w.grid << " | " << w.steps << " | " << sci(r.err.median, 4) << " | " << sci(w.median, 3)
                   << " | " << sci(d, 1) << " |\n";
                break;
            }
    std::string why;
    if (!(maxdiff < 1e-9)) why += " reference solution differs from flow/gmm2d_flow_exact.csv by " + sci(maxdiff) + ";";
    if (!(worst <= 5e-4)) why += " Euler's errors differ by more than 5e-4 relative;";
    if (matched == 0) why += " no configuration matched (run euler on t1 or t1s3 at 5, 10, 20 or 50 NFE);";
    out.passed = why.empty();
    md << "\n" << matched << " configurations matched.\n\nCheck " << (out.passed ? "PASSED" : "FAILED:" + why) << "\n";
    out.report = md.str();
    return out;
}

int write_outputs(const settings& cfg, const problem_info& info, const Eigen::MatrixXd& ref,
                  const std::vector<run_record>& rs, const std::vector<solver_spec>& solvers,
                  const std::vector<grid_spec>& grids, clock_type::time_point t_start) {
    // outputs
    fs::create_directories(cfg.out_dir);
    std::string report = markdown_report(info, rs, solvers, grids, cfg.nfe);
    bool check_passed = true;
    if (!cfg.check_dir.empty()) {
        const check_outcome c = cfg.case_name == "flow" ? check_flow_against_reference(cfg.check_dir, ref, rs)
                                                        : check_against_reference(cfg.check_dir, ref, rs);
        report += c.report;
        check_passed = c.passed;
    }
    std::cout << report << std::flush;
    deis_tools::write_text_file((fs::path(cfg.out_dir) / "table.md").string(), report);
    write_csv((fs::path(cfg.out_dir) / "results.csv").string(), cfg.csv_case(), rs);
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

}  // namespace deis_bench
