#include "plot.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <utility>

#include "report.hpp"
#include "runs.hpp"
#include "support/atomic_file.hpp"

namespace deis_bench {

namespace fs = std::filesystem;

std::string shell_quote(const std::string& s) {
    std::string q = "'";
    for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return q + "'";
}

namespace {

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

}  // namespace

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
    deis_tools::write_text_file(script, body.str());
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

}  // namespace deis_bench
