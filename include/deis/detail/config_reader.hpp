// deis: typed reads of the keys of a JSON object, for the scheduler_config.json reader
// (deis/diffusers/config.hpp): every refusal names the key and its value.
#pragma once

#include <algorithm>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "deis/detail/error.hpp"

namespace deis::detail {

struct config_reader {
    const nlohmann::json& j;
    const char* where = "scheduler_config";

    bool has(const char* key) const { return j.contains(key) && !j.at(key).is_null(); }

    // A key or value as shown in a message: at most 60 characters, control characters as '?'
    // (the message is one line).
    static std::string shown(std::string s) {
        if (s.size() > 60) s = s.substr(0, 57) + "...";
        for (char& ch : s)
            if (static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f) ch = '?';
        return s;
    }
    [[noreturn]] void bad(const std::string& key, const std::string& expected) const {
        // invalid UTF-8 in a string is shown replaced, never thrown on
        const std::string v = j.contains(key) ? j.at(key).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)
                                              : std::string("(missing)");
        fail(where, shown(key), shown(v), expected);
    }
    double number(const char* key, double dflt) const {
        if (!has(key)) return dflt;
        const auto& v = j.at(key);
        if (!v.is_number()) bad(key, "must be a number");
        const double d = v.get<double>();
        if (!std::isfinite(d)) bad(key, "must be finite");
        return d;
    }
    int integer(const char* key, int dflt, int lo, int hi) const {
        if (!has(key)) return dflt;
        const auto& v = j.at(key);
        const double d = v.is_number() ? v.get<double>() : std::numeric_limits<double>::quiet_NaN();
        if (!(v.is_number() && d == std::floor(d)))
            bad(key, "must be an integer");
        if (!(d >= double(lo) && d <= double(hi)))
            bad(key, "must lie in " + std::to_string(lo) + ".." + std::to_string(hi));
        return int(d);
    }
    bool boolean(const char* key, bool dflt) const {
        if (!has(key)) return dflt;
        const auto& v = j.at(key);
        if (!v.is_boolean()) bad(key, "must be true or false");
        return v.get<bool>();
    }
    std::string string(const char* key, const std::string& dflt) const {
        if (!has(key)) return dflt;
        const auto& v = j.at(key);
        if (!v.is_string()) bad(key, "must be a string");
        return v.get<std::string>();
    }
    std::string one_of(const char* key, const std::string& dflt, const std::vector<std::string>& allowed) const {
        const std::string s = string(key, dflt);
        if (std::find(allowed.begin(), allowed.end(), s) == allowed.end()) {
            std::string list;
            for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
            bad(key, "must be one of: " + list);
        }
        return s;
    }
    void require(const char* key, bool ok_value, const std::string& why) const {
        if (!ok_value) bad(key, why);
    }
};

}  // namespace deis::detail
