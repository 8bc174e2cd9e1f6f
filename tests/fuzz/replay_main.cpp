// The main() of a fuzz target built without libFuzzer (the default build, e.g. with g++):
// runs LLVMFuzzerTestOneInput once on every file of the target's checked-in corpus
// (DEIS_FUZZ_CORPUS, which must hold at least one file) and of its regressions
// (DEIS_FUZZ_REGRESSIONS, optional), or on the files and folders given as arguments (to
// replay a crash libFuzzer wrote). A crash, an uncaught exception or a broken property
// (the targets abort) fails; ctest runs it as fuzz_replay_<target>.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace fs = std::filesystem;

namespace {

// The files of `root` (itself when it is a file), sorted.
std::vector<fs::path> files_of(const fs::path& root) {
    std::vector<fs::path> files;
    if (fs::is_regular_file(root)) return {root};
    for (const auto& e : fs::recursive_directory_iterator(root))
        if (e.is_regular_file()) files.push_back(e.path());
    std::sort(files.begin(), files.end());
    return files;
}

std::size_t replay(const fs::path& file) {
    std::ifstream in(file, std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (!in.good() && !in.eof()) {
        std::cerr << "fuzz replay: cannot read " << file.string() << '\n';
        std::exit(1);
    }
    std::cout << "  " << file.string() << " (" << bytes.size() << " bytes)" << std::endl;
    LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
    return 1;
}

}  // namespace

int main(int argc, char** argv) {
    std::size_t count = 0;
    if (argc > 1) {
        for (int i = 1; i < argc; ++i)
            for (const auto& f : files_of(argv[i])) count += replay(f);
    } else {
        const fs::path corpus = DEIS_FUZZ_CORPUS, regressions = DEIS_FUZZ_REGRESSIONS;
        const auto seeds = fs::is_directory(corpus) ? files_of(corpus) : std::vector<fs::path>{};
        if (seeds.empty()) {
            std::cerr << "fuzz replay: no corpus in " << corpus.string() << '\n';
            return 1;
        }
        for (const auto& f : seeds) count += replay(f);
        if (fs::is_directory(regressions))
            for (const auto& f : files_of(regressions)) count += replay(f);
    }
    std::cout << "fuzz replay " << DEIS_FUZZ_TARGET << ": " << count << " inputs, no failure" << std::endl;
    return count > 0 ? 0 : 1;
}
