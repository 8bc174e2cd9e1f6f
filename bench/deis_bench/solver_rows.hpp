// deis-bench: the rows of the solver sweep, by name (a header of its own so that the tests can
// check that every name reads back as itself: tests/test_solver_config.cpp).
#pragma once

#include <string>
#include <vector>

namespace deis_bench {

// One row: its name and the panel of the plots it belongs to. The configuration is
// deis::parse_solver_config(name), except for the alias "recommended+calibrated" (recommended,
// on a calibrated grid). The presets (docs/presets.md) come last, each in the panel of its
// kind: "euler" (on flow matching first, the baseline, where it runs as DDIM in the data form),
// dpmpp_2m, dpmpp_3m, uni_pc, uni_pc_bh2 (data prediction), deis (noise prediction), heun (rk).
// A row the library rejects on a case (noise prediction or rk from pure noise, uni_pc's B(h) = h
// there) is listed as not run.
struct solver_row {
    const char* name;
    const char* family;
};

inline std::vector<solver_row> solver_rows(const std::string& case_name) {
    std::vector<solver_row> rows;
    if (case_name == "flow") rows.push_back({"euler", "data"});
    const std::vector<solver_row> common = {
        {"ddim", "multistep"},
        {"tab1", "multistep"},
        {"tab2", "multistep"},
        {"tab3", "multistep"},
        {"rhoab1", "multistep"},
        {"rhoab2", "multistep"},
        {"rhoab3", "multistep"},
        {"ipndm", "multistep"},
        {"ddim+corrector", "corrector"},
        {"tab1+corrector", "corrector"},
        {"tab2+corrector", "corrector"},
        {"tab3+corrector", "corrector"},
        {"rhoab1+corrector", "corrector"},
        {"rhoab2+corrector", "corrector"},
        {"rhoab3+corrector", "corrector"},
        {"recommended", "corrector"},
        {"recommended+calibrated", "corrector"},
        {"ddim+data", "data"},
        {"tab1+data", "data"},
        {"tab2+data", "data"},
        {"tab3+data", "data"},
        {"rhoab1+data", "data"},
        {"rhoab2+data", "data"},
        {"rhoab3+data", "data"},
        {"ipndm+data", "data"},
        {"tab1+data+corrector", "data"},
        {"tab2+data+corrector", "data"},
        {"tab3+data+corrector", "data"},
        {"rhoab3+data+corrector", "data"},
        {"rk:heun2", "rk"},
        {"rk:kutta3", "rk"},
        {"rk:rk4", "rk"},
        {"dpmpp_2m", "data"},
        {"dpmpp_3m", "data"},
        {"uni_pc", "data"},
        {"uni_pc_bh2", "data"},
        {"deis", "multistep"},
        {"heun", "rk"},
    };
    rows.insert(rows.end(), common.begin(), common.end());
    if (case_name != "flow") rows.push_back({"euler", "multistep"});
    return rows;
}

}  // namespace deis_bench
