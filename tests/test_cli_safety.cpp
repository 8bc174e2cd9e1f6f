// The helper that writes every output of the programs (examples/support/atomic_file.hpp):
// a failed or stopped write changes nothing, and the temporary is a new file of its own.
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "catch.hpp"
#include "support/atomic_file.hpp"

namespace cli_safety_test {

namespace fs = std::filesystem;

// The names in `dir`, sorted.
inline std::vector<std::string> names_in(const fs::path& dir) {
    std::vector<std::string> v;
    for (const auto& e : fs::directory_iterator(dir)) v.push_back(e.path().filename().string());
    std::sort(v.begin(), v.end());
    return v;
}

inline std::string bytes_of(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// A fresh directory under the system's temporary directory, removed at the end.
struct temp_dir {
    fs::path path = fs::temp_directory_path() / ("deis-safety-" + std::to_string(::getpid()));
    temp_dir() {
        fs::remove_all(path);
        fs::create_directories(path);
    }
    ~temp_dir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
};

}  // namespace cli_safety_test

TEST_CASE("atomic_write: a failed or stopped write leaves the target as it was, and no temporary", "[safety]") {
    namespace fs = std::filesystem;
    using cli_safety_test::bytes_of;
    using cli_safety_test::names_in;
    const cli_safety_test::temp_dir dir;
    const std::string target = (dir.path / "t.txt").string();
    std::ofstream(target) << "old\n";
    const auto write_new = [](std::ostream& out) {
        out << "new\n";
        return true;
    };
    SECTION("a writer that throws") {
        CHECK_THROWS_WITH(deis_tools::atomic_write(target,
                                                   [](std::ostream& out) -> bool {
                                                       out << "new\n";
                                                       throw std::runtime_error("failed");
                                                   }),
                          "failed");
    }
    SECTION("a writer that stops") {
        CHECK_FALSE(deis_tools::atomic_write(target, [](std::ostream& out) { return !(out << "new\n"); }));
    }
    SECTION("a stop before the rename") {
        CHECK_FALSE(deis_tools::atomic_write(target, write_new, [] { return true; }));
    }
    SECTION("a target that has become a symbolic link is not replaced") {
        deis_tools::atomic_file f(target);
        f.stream() << "new\n";
        fs::rename(target, dir.path / "moved.txt");
        fs::create_symlink("moved.txt", target);
        CHECK_THROWS_WITH(f.commit(), Catch::Contains("is a symbolic link: refusing to replace it"));
        fs::remove(target);
        fs::rename(dir.path / "moved.txt", target);
    }
    CHECK(bytes_of(target) == "old\n");
    CHECK(names_in(dir.path) == std::vector<std::string>{"t.txt"});
}

TEST_CASE("atomic_write: the temporary is a new file beside the target, renamed onto it", "[safety]") {
    using cli_safety_test::names_in;
    const cli_safety_test::temp_dir dir;
    const std::string target = (dir.path / "t.txt").string();
    std::ofstream(dir.path / "t.txt.tmp") << "a file of the user's\n";
    std::vector<std::string> during;
    CHECK(deis_tools::atomic_write(target, [&](std::ostream& out) {
        during = names_in(dir.path);
        return bool(out << "new\n");
    }));
    REQUIRE(during.size() == 2);  // .t.txt.XXXXXX and t.txt.tmp
    CHECK(during[0].rfind(".t.txt.", 0) == 0);
    CHECK(during[0].size() == std::string(".t.txt.XXXXXX").size());
    CHECK(cli_safety_test::bytes_of(target) == "new\n");
    CHECK(cli_safety_test::bytes_of(dir.path / "t.txt.tmp") == "a file of the user's\n");
    CHECK(names_in(dir.path) == std::vector<std::string>{"t.txt", "t.txt.tmp"});
}
