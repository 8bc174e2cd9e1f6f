// deis-sample: the command-line options of models from diffusers (deis/diffusers.hpp), which
// apply to every schedule: --scheduler-config (schedule, grid and model output from a
// scheduler_config.json; explicit --grid, --grid-file, --sigmas, --model-output and --predict
// override it), img2img (--init and --strength: the data noised to the first time of the tail
// of the grid), --invert (from the data --init up to the noise end), --print-grid (one line
// per network call before the run: "t tau" for a discrete config, else "t") and
// --image-seq-len. The run itself is run.cpp's, the same for every option.
#include <cmath>
#include <limits>
#include <string>

#include "deis_sample.hpp"

namespace deis_sample {

void add_diffusers_options(CLI::App& app, options& o) {
    o.strength = std::numeric_limits<double>::quiet_NaN();       // not given
    o.image_seq_len = std::numeric_limits<double>::quiet_NaN();  // not given
    app.add_option("--scheduler-config", o.scheduler_config,
                   "diffusers scheduler_config.json: sets the schedule, grid and model output "
                   "(explicit --grid, --model-output, --predict override); replaces --schedule");
    app.add_option("--init", o.init, "Data to start from (img2img), or to invert (--invert); one per row");
    add_number(app, "--strength", o.strength, "With --init: img2img strength in (0, 1] [default: 1]");
    add_number(app, "--image-seq-len", o.image_seq_len,
               "Image tokens for a config with dynamic shifting (Flux: (H/16)(W/16)) [default: 4096]");
    app.add_flag("--invert", o.invert, "Integrate from the data --init up to the noise end (no --noise)");
    app.add_flag("--print-grid", o.print_grid,
                 "Before the run, print one line per network call: t, and the timestep tau of a discrete schedule");
}

void validate_diffusers(options& o) {
    const bool strength_given = !std::isnan(o.strength);
    if (strength_given && o.init.empty()) usage_error("--strength needs --init (the data to start from)");
    if (o.invert && o.init.empty()) usage_error("--invert needs --init (the data to invert)");
    if (o.invert && strength_given) usage_error("--invert and --strength exclude each other");
    if (o.invert && !o.noise.empty()) usage_error("--noise does not apply to --invert, which starts from --init");
    if (!o.init.empty() && !o.invert && o.noise.empty()) usage_error("--init (img2img) needs --noise as well");
    if (!strength_given) o.strength = 1.0;
    o.image_seq_len_given = !std::isnan(o.image_seq_len);
    if (o.image_seq_len_given && o.scheduler_config.empty())
        usage_error("--image-seq-len applies to a --scheduler-config with use_dynamic_shifting only");
    if (o.image_seq_len_given && !config_grid(o))
        usage_error("--image-seq-len sets the shift of the --scheduler-config's own grid, which " +
                    std::string(o.grid == "file" ? "--grid-file" : !o.sigmas.empty() ? "--sigmas" : "--grid") +
                    " replaces");
    if (!o.image_seq_len_given) o.image_seq_len = 4096.0;
    if (!(o.strength > 0.0 && o.strength <= 1.0)) usage_error("--strength = " + num(o.strength) + " must lie in (0, 1]");
    if (!(std::isfinite(o.image_seq_len) && o.image_seq_len > 0.0 && o.image_seq_len <= 1e9))
        usage_error("--image-seq-len = " + num(o.image_seq_len) + " must lie in (0, 1e9]");
}

}  // namespace deis_sample
