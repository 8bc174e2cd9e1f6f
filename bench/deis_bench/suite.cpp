// deis-bench --suite (suite.hpp).
#include "suite.hpp"

#include <Eigen/Core>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <limits>
#include <map>
#include <memory>
#include <sstream>
#include <stdexcept>

#include <deis/deis.hpp>
#include <deis/recommended.hpp>
#include <deis/research/calibrate.hpp>
#include <deis/research/gmm.hpp>
#include <deis/research/reference.hpp>

#include "../bench_support.hpp"
#include "problems.hpp"
#include "runs.hpp"
#include "selection.hpp"
#include "support/atomic_file.hpp"
#include "support/mixture_io.hpp"

namespace deis_bench {
namespace {

namespace fs = std::filesystem;

constexpr double suite_nan = std::numeric_limits<double>::quiet_NaN();

// A candidate of the rule: a configuration name and a grid (power of the VP clock's t, or
// log-rho for power 0; on flow matching a power of t).
struct suite_candidate {
    std::string method;
    double power = 2.0;
    std::string name() const {
        std::ostringstream s;
        s << method << " @ " << (power == 0.0 ? std::string("log-rho") : "t^" + trimmed(power));
        return s.str();
    }
    static std::string trimmed(double p) {
        std::ostringstream s;
        s << p;
        return s.str();
    }
};

std::vector<suite_candidate> suite_candidates(const std::string& family) {
    std::vector<std::string> methods;
    std::vector<double> powers = {1.0, 1.5, 2.0, 2.5, 3.0};
    if (family == "flow") {
        methods = {"euler",       "tab1+data",   "tab1+data+corrector", "tab2+data+corrector", "tab3+data+corrector",
                   "tab2+data",   "tab3+data",   "dpmpp_2m",            "dpmpp_3m",            "uni_pc+order=2",
                   "uni_pc",      "uni_pc_bh2+order=2", "uni_pc_bh2"};
    } else {
        const std::string clock = family == "ve" ? "+clock=vp" : "";
        methods = {"tab1+data+corrector" + clock, "tab2+data+corrector" + clock, "tab3+data+corrector" + clock,
                   "rhoab1+data+corrector",       "rhoab2+data+corrector",       "rhoab3+data+corrector",
                   "tab2+data" + clock,           "tab3+data" + clock,           "rhoab2+data",
                   "dpmpp_2m",                    "dpmpp_3m",                    "uni_pc+order=2",
                   "uni_pc",                      "uni_pc_bh2+order=2",          "uni_pc_bh2",
                   "tab1+data+clock=logsnr+corrector", "tab2+data+clock=logsnr+corrector",
                   "tab3+data+clock=logsnr+corrector", "tab3+data+clock=logsnr"};
        powers.push_back(0.0);
    }
    std::vector<suite_candidate> out;
    for (const auto& m : methods)
        for (double p : powers) out.push_back({m, p});
    return out;
}

// The grid of a candidate: for VP and sigma space the power grid in the time of
// vp_linear(0.1, 20) between the ends' noise levels (the clock of recommended_grid), or log-rho;
// for flow matching the power grid in t.
template <class Schedule>
std::vector<double> suite_grid(const Schedule& sch, const suite_candidate& c, int steps, double t_max, double t_end) {
    if (deis::family_of(sch) == deis::schedule_family::flow) return deis::power_t_grid(sch, steps, t_max, t_end, c.power);
    if (c.power == 0.0) return deis::log_rho_grid(sch, steps, t_max, t_end);
    return deis::check_grid(sch, deis::detail::vp_clock_power_points(sch, t_max, t_end, steps, c.power));
}

// The calibrated row: optimize_grid from the current recommended grid and configuration on a
// calibration batch of the problem's own (never the evaluated x_T), against one calibration
// reference made at the first call; its error on x_T and the search's network calls.
struct suite_calibrated_run {
    double error = suite_nan;
    long search_calls = 0;
};
// One problem: the median error of a candidate (or of the current recommended configuration,
// method "recommended") at an NFE, NaN where the library rejects it or the run fails.
struct suite_problem {
    std::string name, family;
    std::function<double(const suite_candidate&, int)> error;
    std::function<suite_calibrated_run(int)> calibrated;
    std::function<long()> reference_calls;  // of the calibration reference, once made
    std::vector<std::pair<int, double>> best_peer;
};

template <class Schedule>
std::function<double(const suite_candidate&, int)> suite_error_function(Schedule sch, any_network net, deis::model_output output,
                                                        Eigen::MatrixXd x_T, Eigen::MatrixXd ref, double t_max,
                                                        double t_end) {
    return [=](const suite_candidate& c, int nfe) -> double {
        try {
            const bool rec = c.method == "recommended";
            std::vector<double> grid = rec ? deis::recommended_grid(sch, nfe, t_max, t_end)
                                           : suite_grid(sch, c, nfe, t_max, t_end);
            // every candidate is a multistep method: no Runge-Kutta solver is built
            deis::multistep_options o = rec ? deis::recommended_options(sch, grid) : deis::parse_multistep(c.method);
            o.output = output;
            Eigen::MatrixXd x = x_T;
            const deis::sample_result r = deis::multistep_solver(sch, std::move(grid), o).sample(net, x);
            return r.ok() ? measure(x, ref, {}, nullptr).median : suite_nan;
        } catch (const std::invalid_argument&) {
            return suite_nan;
        }
    };
}

template <class Schedule>
void add_suite_calibration(suite_problem& pr, Schedule sch, any_network net, deis::model_output output, Eigen::MatrixXd x_T,
                     Eigen::MatrixXd ref, Eigen::MatrixXd batch, double t_max, double t_end) {
    auto cal = std::make_shared<deis::calibration_reference>();
    pr.reference_calls = [cal] { return cal->network_calls; };
    pr.calibrated = [=](int nfe) -> suite_calibrated_run {
        if (!cal->complete) {
            deis::calibration_reference_options ro;
            ro.output = output;
            *cal = deis::make_calibration_reference(sch, net, batch, t_max, t_end, ro);
        }
        deis::calibrate_options co;
        co.initial_grid = deis::recommended_grid(sch, nfe, t_max, t_end);
        const auto config = [&sch, output](const std::vector<double>& g) {
            deis::multistep_options o = deis::recommended_options(sch, g);
            o.output = output;
            return o;
        };
        const deis::optimized_grid og = deis::optimize_grid(sch, config, net, *cal, nfe, co);
        const deis::multistep_solver solver(sch, og.grid, config(og.grid));
        Eigen::MatrixXd x = x_T;
        const deis::sample_result r = solver.sample(net, x);
        return {r.ok() ? measure(x, ref, {}, nullptr).median : suite_nan, og.search_calls};
    };
}

template <class Schedule>
Eigen::MatrixXd suite_reference(const Schedule& sch, const any_network& net, deis::model_output output,
                             const Eigen::MatrixXd& x_T, double t_max, double t_end) {
    deis::reference_options opt;
    opt.atol = opt.rtol = 1e-11;
    opt.block_columns = 100;
    opt.output = output;
    deis::state<double> x = x_T;
    const auto r = deis::reference_solution(sch, net, x, t_max, t_end, opt);
    if (!r) throw std::runtime_error("suite: reference solution failed: " + std::string(deis::to_string(r.status)));
    return x;
}

std::vector<suite_problem> suite_mixture_problems(const suite_settings& cfg) {
    std::vector<std::pair<std::string, deis::gaussian_mixture>> mixtures = {{"ring2d", ring2d_mixture()},
                                                                             {"gmm16d", gmm16d_mixture()}};
    if (!cfg.mixtures_dir.empty()) {
        std::vector<fs::path> files;
        for (const auto& e : fs::directory_iterator(cfg.mixtures_dir))
            if (e.path().extension() == ".json") files.push_back(e.path());
        std::sort(files.begin(), files.end());
        for (const auto& f : files) mixtures.emplace_back(f.stem().string(), deis_tools::read_mixture_json(f.string()));
    }
    std::vector<suite_problem> out;
    const auto has = [&](const char* f) { return std::find(cfg.families.begin(), cfg.families.end(), f) != cfg.families.end(); };
    // x_T ~ N(0, scale^2 I) from the seed; the calibration batch (256) from seed + 1
    const auto add = [&](const std::string& name, const std::string& family, auto sch, const any_network& net,
                         deis::model_output output, Eigen::Index D, double scale, double t_max, double t_end) {
        const Eigen::MatrixXd x_T = draw_noise(D, cfg.samples, cfg.seed, scale);
        const Eigen::MatrixXd ref = suite_reference(sch, net, output, x_T, t_max, t_end);
        suite_problem pr{name, family, suite_error_function(sch, net, output, x_T, ref, t_max, t_end), {}, {}, {}};
        add_suite_calibration(pr, sch, net, output, x_T, ref, draw_noise(D, 256, cfg.seed + 1, scale), t_max, t_end);
        out.push_back(std::move(pr));
    };
    for (const auto& [name, mix] : mixtures) {
        const Eigen::Index D = mix.dim();
        if (has("vp")) {
            const deis::vp_linear sch(0.1, 20.0, 1.0);
            const deis::gmm_eps<deis::vp_linear> g(mix, sch);
            any_network net = [g](const deis::state<double>& x, double t, deis::state<double>& o) { g(x, t, o); };
            add(name + "/vp", "vp", sch, net, deis::model_output::eps, D, 1.0, 1.0, 1e-3);
        }
        if (has("ve")) {
            const deis::ve sch(0.01, 50.0);
            const deis::gmm_eps<deis::ve> g(mix, sch);
            any_network net = [g](const deis::state<double>& x, double t, deis::state<double>& o) { g(x, t, o); };
            add(name + "/ve", "ve", sch, net, deis::model_output::eps, D, 50.0, 1.0, 0.0);
        }
        if (has("flow")) {
            const deis::flow_matching sch;
            const deis::gmm_model<deis::flow_matching> g(mix, sch, deis::model_output::velocity);
            any_network net = [g](const deis::state<double>& x, double t, deis::state<double>& o) { g(x, t, o); };
            add(name + "/flow", "flow", sch, net, deis::model_output::velocity, D, 1.0, 1.0, 1e-3);
        }
    }
    return out;
}

std::string ratio_text(double v, int prec = 2) {
    if (!std::isfinite(v)) return "-";
    std::ostringstream s;
    s << std::fixed << std::setprecision(prec) << v;
    return s.str();
}
std::string error_text(double v) {
    if (!std::isfinite(v)) return "-";
    std::ostringstream s;
    s << std::scientific << std::setprecision(2) << v;
    return s.str();
}

}  // namespace

int run_suite(const suite_settings& cfg, const std::vector<trained_problem>& trained) {
    const auto t_start = std::chrono::steady_clock::now();
    const std::string csv_path = (fs::path(cfg.out_dir) / "suite.csv").string(),
                      md_path = (fs::path(cfg.out_dir) / "suite.md").string();
    for (const auto& path : {csv_path, md_path}) {  // refused before minutes of work, not after
        const std::string why = deis_tools::output_refusal(path);
        if (!why.empty()) throw std::runtime_error(path + " " + why);
    }
    std::vector<suite_problem> problems;
    for (const auto& t : trained) {
        const deis::vp_linear sch(0.1, 20.0, 1.0);
        Eigen::MatrixXd ref = t.reference;
        if (ref.size() == 0) {
            std::cerr << "suite: the reference solution of " << t.name << "\n";
            ref = suite_reference(sch, t.net, deis::model_output::eps, t.x_T, 1.0, 1e-3);
        }
        suite_problem pr{t.name, "vp", suite_error_function(sch, t.net, deis::model_output::eps, t.x_T, ref, 1.0, 1e-3),
                   {}, {}, t.best_peer};
        if (t.calibration.size() > 0)
            add_suite_calibration(pr, sch, t.net, deis::model_output::eps, t.x_T, ref, t.calibration, 1.0, 1e-3);
        problems.push_back(std::move(pr));
    }
    std::cerr << "suite: reference solutions of the mixtures\n";
    for (auto& p : suite_mixture_problems(cfg)) problems.push_back(std::move(p));

    const std::size_t nn = cfg.nfe.size(), np = problems.size();
    suite_table tab;
    std::vector<std::vector<double>> cur(np, std::vector<double>(nn, suite_nan)), cal = cur;
    std::vector<std::vector<long>> cal_calls(np, std::vector<long>(nn, 0));
    std::map<std::string, std::vector<suite_candidate>> cands;
    for (const auto& f : cfg.families) cands[f] = suite_candidates(f);
    std::ostringstream csv;
    csv << "problem,family,candidate,method,power,nfe,median_err\n";
    for (std::size_t p = 0; p < np; ++p) {
        const auto& cs = cands.at(problems[p].family);
        tab.family.push_back(problems[p].family);
        tab.err.emplace_back(cs.size(), std::vector<double>(nn, suite_nan));
        std::cerr << "suite: " << problems[p].name << " (" << cs.size() << " candidates x " << nn << " NFEs";
        std::cerr << (problems[p].calibrated ? ", then the calibrated grids)\n" : ")\n");
        for (std::size_t c = 0; c < cs.size(); ++c)
            for (std::size_t n = 0; n < nn; ++n) {
                tab.err[p][c][n] = problems[p].error(cs[c], cfg.nfe[n]);
                csv << problems[p].name << ',' << problems[p].family << ",\"" << cs[c].name() << "\"," << cs[c].method
                    << ',' << cs[c].power << ',' << cfg.nfe[n] << ',' << std::setprecision(7) << tab.err[p][c][n]
                    << '\n';
            }
        for (std::size_t n = 0; n < nn; ++n) {
            cur[p][n] = problems[p].error({"recommended", 0.0}, cfg.nfe[n]);
            csv << problems[p].name << ',' << problems[p].family << ",recommended,recommended,," << cfg.nfe[n] << ','
                << cur[p][n] << '\n';
            if (!problems[p].calibrated) continue;
            const suite_calibrated_run r = problems[p].calibrated(cfg.nfe[n]);
            cal[p][n] = r.error;
            cal_calls[p][n] = r.search_calls;
            csv << problems[p].name << ',' << problems[p].family << ",calibrated,calibrated,," << cfg.nfe[n] << ','
                << cal[p][n] << '\n';
        }
    }
    const auto best = library_best(tab);
    const auto loo = leave_one_out(tab, best);

    std::string head = "| problem |", sep = "|---|";
    for (int n : cfg.nfe) {
        head += " " + std::to_string(n) + " |";
        sep += "---|";
    }
    const auto ratio_row = [&](const std::vector<double>& v) {
        std::string s;
        for (double x : v) s += " " + ratio_text(x) + " |";
        return s;
    };
    const auto over_best = [&](std::size_t p, const std::vector<double>& e) {
        std::vector<double> r(nn);
        for (std::size_t n = 0; n < nn; ++n) r[n] = e[n] / best[p][n];
        return r;
    };
    // geometric mean and largest value of a set of ratios
    struct spread {
        double log_sum = 0.0, worst = 0.0;
        int count = 0;
        void add(double r) {
            log_sum += std::log(r);
            worst = std::max(worst, std::isfinite(r) ? r : std::numeric_limits<double>::infinity());
            ++count;
        }
        std::string text() const { return count ? ratio_text(std::exp(log_sum / count)) + " / " + ratio_text(worst) : "-"; }
    };

    std::ostringstream md;
    md << "# The suite\n\n" << np << " problems: ";
    for (std::size_t p = 0; p < np; ++p) md << (p ? ", " : "") << problems[p].name;
    md << ". Mixtures: " << cfg.samples << " samples x_T (seed " << cfg.seed
       << "), reference by deis::reference_solution at 1e-11; the trained networks: their x_T and reference "
          "solution. Errors: median of ||x - x_ref|| / sqrt(D). Candidates: per family, every configuration x grid "
          "of the rule's search space (suite.csv); the library's best is the lowest of them at each NFE.\n\n"
       << "Rules compared, as ratios to the library's best: the recommended configuration (deis::recommended_options "
          "on deis::recommended_grid), the candidate chosen per NFE by the lowest geometric mean ratio over the "
          "family's problems, judged by leave-one-out (chosen without the problem, measured on it), and the "
          "recommended configuration on a grid calibrated by deis::optimize_grid.\n\n";
    md << "## Summary\n\nGeometric mean / largest ratio to the library's best over the family's problems and NFEs.\n\n"
       << "| family | problems | recommended | leave-one-out choice | calibrated |\n|---|---|---|---|---|\n";
    for (const auto& f : cfg.families) {
        spread a, b, c;
        int count = 0;
        for (std::size_t p = 0; p < np; ++p) {
            if (problems[p].family != f) continue;
            ++count;
            for (std::size_t n = 0; n < nn; ++n) {
                a.add(cur[p][n] / best[p][n]);
                b.add(loo[p][n]);
                if (std::isfinite(cal[p][n])) c.add(cal[p][n] / best[p][n]);
            }
        }
        md << "| " << f << " | " << count << " | " << a.text() << " | " << b.text() << " | " << c.text() << " |\n";
    }
    for (std::size_t p = 0; p < np; ++p) {
        if (problems[p].best_peer.empty()) continue;
        md << "\n### " << problems[p].name << " against the best peer\n\nRatio to the lowest median error of the "
              "other projects' runs at each NFE.\n\n"
           << head << '\n' << sep << '\n';
        std::vector<double> peer(nn, suite_nan);
        for (std::size_t n = 0; n < nn; ++n)
            for (const auto& [k, v] : problems[p].best_peer)
                if (k == cfg.nfe[n]) peer[n] = v;
        std::vector<double> r1(nn), r2(nn), r3(nn), r4(nn);
        for (std::size_t n = 0; n < nn; ++n) {
            r1[n] = cur[p][n] / peer[n];
            r2[n] = loo[p][n] * best[p][n] / peer[n];
            r3[n] = cal[p][n] / peer[n];
            r4[n] = best[p][n] / peer[n];
        }
        md << "| recommended |" << ratio_row(r1) << "\n| leave-one-out choice |" << ratio_row(r2)
           << "\n| calibrated |" << ratio_row(r3) << "\n| library's best |" << ratio_row(r4) << '\n';
    }

    if (cands.count("flow")) {
        md << "\n### Flow matching against Euler\n\nEuler's lowest median error over the power grids of the "
              "candidates, divided by that of the recommended configuration and of the calibrated row (how many "
              "times better they are).\n\n"
           << head << '\n' << sep << '\n';
        const auto& cs = cands.at("flow");
        for (std::size_t p = 0; p < np; ++p) {
            if (problems[p].family != "flow") continue;
            std::vector<double> euler(nn, std::numeric_limits<double>::infinity()), r1(nn), r2(nn);
            for (std::size_t c = 0; c < cs.size(); ++c)
                if (cs[c].method == "euler")
                    for (std::size_t n = 0; n < nn; ++n)
                        if (std::isfinite(tab.err[p][c][n])) euler[n] = std::min(euler[n], tab.err[p][c][n]);
            for (std::size_t n = 0; n < nn; ++n) {
                r1[n] = euler[n] / cur[p][n];
                r2[n] = euler[n] / cal[p][n];
            }
            md << "| " << problems[p].name << ": recommended |" << ratio_row(r1) << "\n| " << problems[p].name
               << ": calibrated |" << ratio_row(r2) << '\n';
        }
    }

    md << "\n## The choice on the whole suite\n\n| family | NFE | chosen | geometric mean ratio |\n|---|---|---|---|\n";
    std::map<std::string, std::vector<std::size_t>> rule;
    for (const auto& f : cfg.families)
        for (std::size_t n = 0; n < nn; ++n) {
            const std::size_t c = choose_candidate(tab, best, f, n, np);
            rule[f].push_back(c);
            spread s;
            for (std::size_t p = 0; p < np; ++p)
                if (problems[p].family == f) s.add(tab.err[p][c][n] / best[p][n]);
            md << "| " << f << " | " << cfg.nfe[n] << " | " << cands.at(f)[c].name() << " | "
               << ratio_text(std::exp(s.log_sum / s.count)) << " |\n";
        }

    md << "\n## Leave-one-out\n\nOn each problem, the ratio to the library's best of the candidate chosen on the "
          "other problems of its family.\n\n"
       << head << " largest |\n" << sep << "---|\n";
    for (std::size_t p = 0; p < np; ++p)
        md << "| " << problems[p].name << " |" << ratio_row(loo[p]) << " "
           << ratio_text(*std::max_element(loo[p].begin(), loo[p].end())) << " |\n";

    md << "\n## Per problem\n\nThe library's best median error, and ratios to it.\n";
    for (std::size_t p = 0; p < np; ++p) {
        std::vector<double> chosen(nn);
        for (std::size_t n = 0; n < nn; ++n) chosen[n] = tab.err[p][rule[problems[p].family][n]][n] / best[p][n];
        md << "\n### " << problems[p].name << "\n\n" << head << '\n' << sep << '\n' << "| library's best |";
        for (double b : best[p]) md << ' ' << error_text(b) << " |";
        md << "\n| recommended |" << ratio_row(over_best(p, cur[p])) << "\n| choice on the suite |"
           << ratio_row(chosen) << "\n| leave-one-out choice |" << ratio_row(loo[p]) << "\n| calibrated |"
           << ratio_row(over_best(p, cal[p])) << '\n';
    }

    md << "\n## Calibration cost\n\nNetwork calls (each on the whole calibration batch): the calibration reference, "
          "made once per problem, and the search at each NFE.\n\n"
       << "| problem | reference |";
    for (int n : cfg.nfe) md << ' ' << n << " |";
    md << "\n|---|---|";
    for (std::size_t n = 0; n < nn; ++n) md << "---|";
    md << '\n';
    for (std::size_t p = 0; p < np; ++p) {
        if (!problems[p].calibrated) continue;
        md << "| " << problems[p].name << " | " << problems[p].reference_calls() << " |";
        for (long c : cal_calls[p]) md << ' ' << c << " |";
        md << '\n';
    }
    md << "\nsuite: " << std::fixed << std::setprecision(0)
       << std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count() << " s\n";
    std::cout << md.str() << std::flush;
    fs::create_directories(cfg.out_dir);
    deis_tools::write_text_file(csv_path, csv.str());
    deis_tools::write_text_file(md_path, md.str());
    std::cerr << "deis-bench: wrote suite.csv and suite.md in " << cfg.out_dir << '\n';
    return 0;
}

}  // namespace deis_bench
